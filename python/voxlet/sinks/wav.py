"""WAV file sink, 16-bit PCM, whose target is checked when it opens (before any model work).

A regular file (or a new one) is written to a unique temporary file beside it and renamed over
it when complete, so an interrupted run leaves the old file, or nothing, and never a file that
looks complete. A FIFO or a device is written directly, streaming, with the "unknown size"
header, and never replaced. A symlink is written through. See `voxlet._files`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet._files import Replaced, plan_output
from voxlet.audio import AudioError, WavWriter
from voxlet.errors import SinkError
from voxlet.sinks.stdout import StdoutSink


class WavFileSink:
    def __init__(self, path: str | Path, sample_rate_hz: int, channels: int = 1):
        self.path = Path(path)
        try:
            self._plan = plan_output(path)
        except OSError as e:
            raise SinkError(str(e)) from e
        self._writer: WavWriter | None = None
        self._stream: StdoutSink | None = None
        try:
            if isinstance(self._plan, Replaced):
                self._writer = WavWriter(str(self._plan.temporary), sample_rate_hz, channels, "s16")
            else:
                # never truncated or replaced: a FIFO's reader or a device gets the bytes
                fd = os.open(self._plan.target, os.O_WRONLY)
                self._stream = StdoutSink("wav", sample_rate_hz, os.fdopen(fd, "wb", buffering=0))
        except (AudioError, OSError) as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {_reason(e)}") from e

    def write(self, pcm: npt.NDArray[np.float32]) -> None:
        try:
            if self._writer is not None:
                self._writer.write(np.ascontiguousarray(pcm, np.float32).reshape(-1))
            elif self._stream is not None:
                self._stream.write(pcm)
        except (AudioError, OSError) as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {_reason(e)}") from e

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if isinstance(self._plan, Replaced):
                self._plan.commit()
            self._close_stream()
        except (AudioError, OSError) as e:
            self.abort()
            raise SinkError(f"cannot write {self.path}: {_reason(e)}") from e

    def abort(self) -> None:
        """Closes without committing: the temporary file is removed, the target untouched."""
        if self._writer is not None:
            try:
                self._writer.close()
            except AudioError:
                pass
        if isinstance(self._plan, Replaced):
            self._plan.discard()
        try:
            self._close_stream()
        except OSError:
            pass

    def _close_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()
            stream.file.close()


def _reason(e: Exception) -> str:
    text = str(e)
    return text.rsplit(": ", 1)[-1] if "os error" in text else text
