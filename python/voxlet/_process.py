"""Process-wide settings, made by an explicit call (`voxlet.tune_process()`), each only where
the user has not chosen: the `voxlet` command and `voxlet serve` make it first thing; an
application that embeds voxlet calls it itself, before it imports torch, if it wants them.
Importing voxlet changes nothing in the process.

Both are measured on 2 cores (BENCHMARKS.md) and matter because every stream runs on two fresh
worker threads:

- OpenMP's wait policy: idle OpenMP workers of one stage spin on the core the other stage needs,
  which turned the first frame's two-core relay into a loss. PASSIVE makes them sleep. It only
  takes effect if torch is not loaded yet (OpenMP reads it once).
- glibc's malloc arenas: each new thread may get a fresh arena, so every stream faulted in new
  pages for its activations and kept them; two arenas cut int8 first audio and peak memory
  (BENCHMARKS.md). The limit applies to arenas created from now on.

`release_free_heap` hands memory the heap holds but no longer uses back to the system; a stream
calls it when its decoder finishes, so one stream's freed activations do not add to the next's
resident memory (glibc keeps them otherwise: tens of MB after a few streams).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # no typing import at start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _glibc(name: str) -> Callable[..., Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return getattr(ctypes.CDLL(None), name)  # glibc; absent on musl
    except (OSError, AttributeError):
        return None


def tune_process() -> None:
    """OpenMP's passive wait policy (if torch is not imported yet and OMP_WAIT_POLICY is
    unset) and at most MALLOC_ARENAS glibc malloc arenas (unless MALLOC_ARENA_MAX is set)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    mallopt = _glibc("mallopt")
    if mallopt is not None and "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


_malloc_trim: list[Callable[..., Any] | None] = []  # found on first use: ctypes loads then


def release_free_heap() -> None:
    """Returns the heap's free pages to the system where the C library can (glibc)."""
    if not _malloc_trim:
        _malloc_trim.append(_glibc("malloc_trim"))
    if _malloc_trim[0] is not None:
        _malloc_trim[0](0)


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the system says, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
