"""Progress on stderr: one line rewritten in place (a new line each time when stderr is not a
terminal, at most every `every_s` seconds), with counts, rate, ETA and the latest metrics."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(
        self, what: str, total: int, done: int = 0, every_s: float = 0.5, out: TextIO | None = None
    ):
        self.what, self.total, self.done = what, total, done
        self._first, self._start, self._last = done, time.monotonic(), 0.0
        self._out = out if out is not None else sys.stderr
        self._tty = self._out.isatty()
        self._every = every_s if self._tty else max(every_s, 10.0)

    def update(self, done: int, force: bool = False, **metrics: float) -> None:
        self.done = done
        now = time.monotonic()
        if not force and now - self._last < self._every:
            return
        self._last = now
        elapsed = now - self._start
        rate = (done - self._first) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        shown = " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        line = (
            f"{self.what} {done}/{self.total} [{_clock(elapsed)}<{_clock(eta)}, "
            f"{rate:.3g}/s] {shown}".rstrip()
        )
        self._out.write(("\r" + line + "\x1b[K") if self._tty else line + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()
