"""Word timings file sink: `(word, start_s, end_s)`s -> JSON, WebVTT or SubRip, by suffix.

- `.vtt`: WebVTT, one cue per word (captions that follow the voice word by word).
- `.srt`: SubRip, the same cues.
- anything else: JSON, a list of `{"word": ..., "start": ..., "end": ...}` in seconds.

Its target is checked when it opens (before any model work) and, like the WAV sink's, written
to a temporary file renamed over it once complete: an interrupted run leaves the old file or
nothing. See `voxlet._files`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from voxlet._files import Replaced, plan_output
from voxlet.errors import SinkError

FORMATS = ("json", "vtt", "srt")


def timings_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in ("vtt", "srt") else "json"


def render(words: Iterable[tuple[str, float, float]], fmt: str) -> str:
    """The file's text for `words` in format `fmt` (one of FORMATS)."""
    rows = list(words)
    if fmt == "json":
        items = [{"word": w, "start": round(s, 3), "end": round(e, 3)} for w, s, e in rows]
        return json.dumps(items, ensure_ascii=False, indent=1) + "\n"
    if fmt not in FORMATS:
        raise ValueError(f"word timings format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    for i, (word, start, end) in enumerate(rows, 1):
        if fmt == "srt":
            lines.append(str(i))
        lines.append(f"{_clock(start, fmt)} --> {_clock(max(end, start + 0.001), fmt)}")
        lines.extend([word, ""])
    return "\n".join(lines)


def _clock(seconds: float, fmt: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{',' if fmt == 'srt' else '.'}{ms:03d}"


class WordTimingsFile:
    """Collects word timings and writes them when closed."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = timings_format(path)
        try:
            self._plan = plan_output(path, "--word-timings")
        except OSError as e:
            raise SinkError(str(e)) from e
        self._words: list[tuple[str, float, float]] = []

    def add(self, words: Iterable[tuple[str, float, float]]) -> None:
        self._words.extend(words)

    def close(self) -> None:
        data = render(self._words, self.format).encode("utf-8")
        try:
            if isinstance(self._plan, Replaced):
                self._plan.temporary.write_bytes(data)
                self._plan.commit()
            else:  # a FIFO or a device: written in place
                fd = os.open(self._plan.target, os.O_WRONLY)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
        except OSError as e:
            self.abort()
            raise SinkError(f"cannot write --word-timings {self.path}: {e.strerror or e}") from e

    def abort(self) -> None:
        """Closes without writing: the temporary file is removed, the target untouched."""
        if isinstance(self._plan, Replaced):
            self._plan.discard()
