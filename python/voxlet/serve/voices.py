"""The voices a server offers, by name: the model's predefined voices (official models), its
default voice, and every `NAME.safetensors` in the voices folder, scanned once at start. Names
are looked up in that list, never used as paths."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from voxlet import registry
from voxlet.errors import VoiceError
from voxlet.tts import TTS, Voice

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT = "default"


class VoiceCatalog:
    def __init__(self, tts: TTS, voices_dir: Path | None = None):
        self._tts = tts
        self._sources: dict[str, str] = {}
        if tts.is_official:
            for name in registry.PREDEFINED_VOICES:
                self._sources[name] = name
        try:
            self._sources.setdefault(DEFAULT, tts.default_voice())
        except VoiceError:
            pass
        if voices_dir is not None:
            for path in sorted(Path(voices_dir).glob("*.safetensors")):
                if _NAME.fullmatch(path.stem) and path.is_file():
                    self._sources[path.stem] = str(path)
        self._loaded: dict[str, Voice] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._sources)

    @property
    def default(self) -> str | None:
        if DEFAULT in self._sources:
            return DEFAULT
        return next(iter(self._sources), None)

    def check(self, name: object) -> str:
        """The name, if the server offers it; a VoiceError naming the choices otherwise."""
        if not isinstance(name, str) or name not in self._sources:
            offered = ", ".join(self._sources) or "none"
            shown = name if isinstance(name, str) and len(name) <= 64 else "(that)"
            raise VoiceError(f"voice {shown!r}: unknown; this server offers: {offered}")
        return name

    def get(self, name: str) -> Voice:
        """The voice, loaded on first use (blocking: call it off the event loop)."""
        name = self.check(name)
        with self._lock:
            voice = self._loaded.get(name)
            if voice is None:
                voice = self._tts.voice(self._sources[name])
                self._loaded[name] = voice
        return voice
