"""WAV file sink: 16-bit PCM, written to a temporary name and renamed on close.

A failed or cancelled run leaves no file that looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet.audio import AudioError, WavWriter
from voxlet.errors import SinkError


class WavFileSink:
    def __init__(self, path: str | Path, sample_rate_hz: int, channels: int = 1):
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        try:
            self._writer = WavWriter(str(self._tmp), sample_rate_hz, channels, "s16")
        except AudioError as e:
            raise SinkError(f"cannot write {self.path}: {_reason(e)}") from e

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        try:
            self._writer.write(np.ascontiguousarray(pcm, np.float32).reshape(-1))
        except AudioError as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {_reason(e)}") from e

    def close(self) -> None:
        try:
            self._writer.close()
            os.replace(self._tmp, self.path)
        except (AudioError, OSError) as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {_reason(e)}") from e

    def abort(self) -> None:
        try:
            self._writer.close()
        except AudioError:
            pass
        self._tmp.unlink(missing_ok=True)


def _reason(e: Exception) -> str:
    text = str(e)
    return text.rsplit(": ", 1)[-1] if "os error" in text else text
