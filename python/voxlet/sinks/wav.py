"""WAV file sink: 16-bit PCM mono, written to a temporary name and renamed on close.

A failed or cancelled run leaves no file that looks complete.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet.audio import f32_to_i16
from voxlet.errors import SinkError


class WavFileSink:
    def __init__(self, path: str | Path, sample_rate_hz: int):
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        try:
            self._file = open(self._tmp, "wb")
        except OSError as e:
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from e
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate_hz)

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        try:
            self._wav.writeframesraw(f32_to_i16(np.ascontiguousarray(pcm, np.float32)).tobytes())
        except OSError as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from e

    def close(self) -> None:
        try:
            self._wav.close()
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {e.strerror or e}") from e

    def abort(self) -> None:
        try:
            self._wav.close()
        except (OSError, ValueError):
            pass
        self._file.close()
        self._tmp.unlink(missing_ok=True)
