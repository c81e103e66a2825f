"""Stdout sink: raw s16le / f32le PCM, or a streaming WAV with the 'unknown size' header.

Flushed per frame so a player on the other end of a pipe starts at once. A closed pipe raises
BrokenPipeError, which the CLI turns into a quiet, prompt exit.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from voxlet.audio import f32_to_i16

Format = Literal["wav", "s16le", "f32le"]
_UNKNOWN = 0xFFFFFFFF


def wav_header(sample_rate_hz: int, bits: int = 16, n_bytes: int | None = None) -> bytes:
    """A mono PCM WAV header; sizes are 0xFFFFFFFF when the length is not known yet."""
    data = _UNKNOWN if n_bytes is None else n_bytes
    riff = _UNKNOWN if n_bytes is None else 36 + n_bytes
    block = bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate_hz, sample_rate_hz * block, block, bits)
        + b"data"
        + struct.pack("<I", data)
    )


class StdoutSink:
    def __init__(self, fmt: Format, sample_rate_hz: int, stream: BinaryIO | None = None):
        self.fmt = fmt
        self._out = stream if stream is not None else sys.stdout.buffer
        if fmt == "wav":
            self._out.write(wav_header(sample_rate_hz))

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        if self.fmt == "f32le":
            data = np.ascontiguousarray(pcm, dtype="<f4").tobytes()
        else:
            data = f32_to_i16(np.ascontiguousarray(pcm, np.float32)).tobytes()
        self._out.write(data)
        self._out.flush()

    def close(self) -> None:
        self._out.flush()

    def abort(self) -> None:
        pass
