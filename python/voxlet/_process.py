"""Process-wide settings voxlet makes once, when the package imports this module (first), each
only where the user has not chosen.

Both are measured on 2 cores (BENCHMARKS.md) and matter because every stream runs on two fresh
worker threads:

- OpenMP's wait policy: idle OpenMP workers of one stage spin on the core the other stage needs,
  which turned the first frame's two-core relay into a loss. PASSIVE makes them sleep. It only
  takes effect if torch is not loaded yet (OpenMP reads it once).
- glibc's malloc arenas: each new thread may get a fresh arena, so every stream faulted in new
  pages for its activations and kept them; two arenas cut int8 first audio and peak memory
  (BENCHMARKS.md). The limit applies to arenas created from now on.
"""

from __future__ import annotations

import ctypes
import os
import sys

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def tune_process() -> None:
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if sys.platform.startswith("linux") and "MALLOC_ARENA_MAX" not in os.environ:
        try:
            mallopt = ctypes.CDLL(None).mallopt  # glibc; absent on musl
        except (OSError, AttributeError):
            return
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


tune_process()
