"""The Sink protocol: write(pcm float32 1-D) per frame, then close() on success or abort()."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt


class Sink(Protocol):
    def write(self, pcm: npt.NDArray[np.float32]) -> None: ...

    def close(self) -> None:
        """Finishes the output; only after this does it look complete."""

    def abort(self) -> None:
        """Discards the output after a failure or cancellation."""
