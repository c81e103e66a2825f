"""Response audio: float32 frames at 24 kHz -> the bytes of one response format.

`pcm` (raw s16le, 24 kHz mono) and `wav` (a streaming header, size unknown) go out frame by
frame; `mp3`, `opus` (in Ogg) and `flac` are encoded by libsndfile (`soundfile`) once the
utterance is complete, so they arrive whole. `aac` has no encoder here: a clear error.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt

from voxlet.audio import f32_to_bytes, wav_header
from voxlet.constants import SAMPLE_RATE_HZ

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm;rate=24000",
}
_LIBSNDFILE = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "opus": ("OGG", "OPUS"),
    "flac": ("FLAC", "PCM_16"),
}
SUPPORTED = ("mp3", "opus", "flac", "wav", "pcm")


class UnsupportedFormat(ValueError):
    pass


class Encoder:
    """`start()` once, `frame(pcm)` per frame, `finish()` once; each returns bytes to send."""

    def __init__(self, fmt: str):
        if fmt not in SUPPORTED:
            raise UnsupportedFormat(
                f"response_format {fmt!r}: not supported here; use one of {', '.join(SUPPORTED)}"
            )
        self.format = fmt
        self.content_type = CONTENT_TYPES[fmt]
        self.streams = fmt in ("pcm", "wav")
        self._held: list[npt.NDArray[np.int16]] = []

    def start(self) -> bytes:
        return wav_header(SAMPLE_RATE_HZ, 1, "s16") if self.format == "wav" else b""

    def frame(self, pcm: npt.NDArray[np.float32]) -> bytes:
        data = f32_to_bytes(np.ascontiguousarray(pcm, np.float32).reshape(-1), "s16")
        if self.streams:
            return data
        self._held.append(np.frombuffer(data, "<i2"))
        return b""

    def finish(self) -> bytes:
        if self.streams:
            return b""
        import soundfile

        container, subtype = _LIBSNDFILE[self.format]
        audio = np.concatenate(self._held) if self._held else np.zeros(0, np.int16)
        self._held = []
        out = io.BytesIO()
        soundfile.write(out, audio, SAMPLE_RATE_HZ, subtype=subtype, format=container)
        return out.getvalue()
