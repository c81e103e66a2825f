"""Objects whose threads may still run, ended before the interpreter finalizes.

A worker thread still inside native code (a kernel, the tokenizer) when Python finalizes is
unwound through C++ or Rust frames and aborts the process; a stream nobody stopped would also
keep its threads. `ExitList.add` registers one `atexit` hook on first use that ends every
object still listed.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ExitList(Generic[T]):
    def __init__(self, end: Callable[[T], object]):
        self._end = end
        self._live: weakref.WeakSet[T] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._registered = False

    def add(self, obj: T) -> None:
        with self._lock:
            if not self._registered:
                atexit.register(self._end_all)
                self._registered = True
            self._live.add(obj)

    def discard(self, obj: T) -> None:
        self._live.discard(obj)

    def _end_all(self) -> None:
        for obj in list(self._live):
            self._end(obj)
