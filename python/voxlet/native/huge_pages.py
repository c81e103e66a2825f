"""Wide float weights moved onto huge pages once the model is loaded, behind the caller's back.

A one-row product streams every weight from memory each FlowLM step, and runs faster from
2 MiB pages than from the page cache's 4 KiB ones (fewer TLB misses, no prefetcher restart at
every page: the full-size fp32 step 19.3 -> 16.7 ms, BENCHMARKS.md). But a copy onto huge pages
at load made the caller wait for every fresh page to be faulted in (about 0.4 s for the
full-size model on this VM, more than half its cold start). So loading reads the checkpoint's
float32 or bf16 weights in place, and this module's thread copies them over afterwards, one
matrix at a time, at the lowest CPU priority (it runs when the streams leave a core idle).
Products keep their bits throughout (`F32Matrix.move_to_huge_pages`: a copy of the same
values, swapped in between products); each matrix's file pages are dropped once it has moved,
so the process never holds both copies of more than one matrix.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from voxlet._native import F32Matrix
from voxlet.native.checkpoint import Checkpoint
from voxlet.runtime.at_exit import ExitList

log = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20


def move_in_background(ck: Checkpoint) -> threading.Thread | None:
    """Starts moving `ck`'s in-place matrices of at least one huge page, then releases the
    file's pages; returns the (daemon) thread, or None where nothing is worth moving (the
    pages are released at once). At exit the move stops after the matrix in hand and the
    thread is joined: a thread still inside a native copy when Python finalizes would be
    unwound through Rust frames and abort the process."""
    movable = [(k, m) for k, m in ck.read_in_place.items() if m.weight_bytes >= HUGE_PAGE]
    if not movable:
        ck.release()
        return None
    mover = _Mover(ck, movable)
    _RUNNING.add(mover)
    mover.thread.start()
    return mover.thread


class _Mover:
    def __init__(self, ck: Checkpoint, movable: list[tuple[str, F32Matrix]]):
        self.ck, self.movable = ck, movable
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="voxlet-huge-pages", daemon=True)

    def _run(self) -> None:
        _lowest_priority()
        try:
            for key, matrix in self.movable:
                if self.stop.is_set():
                    break
                if matrix.move_to_huge_pages():
                    self.ck.release(key)
        except Exception as e:  # an optimisation: the weights stay where they are
            log.debug("moving weights onto huge pages stopped: %s", e)
        finally:
            _RUNNING.discard(self)
        self.ck.release()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


_RUNNING: ExitList[_Mover] = ExitList(lambda mover: mover.close())


def _lowest_priority() -> None:
    """This thread only (Linux: a thread id names one thread to setpriority)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass
