"""Stdout sink: raw s16le / f32le PCM, or a streaming WAV with the 'unknown size' header.

Flushed per frame so a player on the other end of a pipe starts at once. A closed pipe raises
BrokenPipeError, which the CLI turns into a quiet, prompt exit.
"""

from __future__ import annotations

import sys
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from voxlet.audio import f32_to_bytes, wav_header
from voxlet.errors import SinkError

Format = Literal["wav", "s16le", "f32le"]


class StdoutSink:
    def __init__(self, fmt: Format, sample_rate_hz: int, stream: BinaryIO | None = None):
        self.fmt = fmt
        if stream is None:
            if sys.stdout is None or sys.stdout.closed:
                raise SinkError("-o -: standard output is closed")
            stream = sys.stdout.buffer
        self._out = stream
        self._encoding = "f32" if fmt == "f32le" else "s16"
        if fmt == "wav":
            self._out.write(wav_header(sample_rate_hz, 1, "s16"))

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        frame = np.ascontiguousarray(pcm, np.float32).reshape(-1)
        self._out.write(f32_to_bytes(frame, self._encoding))
        self._out.flush()

    @property
    def file(self) -> BinaryIO:
        """Where the bytes go."""
        return self._out

    def close(self) -> None:
        self._out.flush()

    def abort(self) -> None:
        self._out.flush()
