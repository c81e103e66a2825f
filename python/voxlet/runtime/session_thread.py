"""`SessionThread`: one thread serving many sessions, the shape the engine (FlowLM) and its
decoder (Mimi) share. Sessions join at the next round and leave as soon as they are finished;
the thread exists only while sessions are on it (it starts with the first to join and ends when
the last leaves: `leave` joins it then), and `close` ends it, failing the sessions still on it.
Every instance whose thread may run is closed at exit, so none is inside a native call when
Python finalizes.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Generic, Protocol, TypeVar

from voxlet.runtime.at_exit import ExitList
from voxlet.runtime.threads import Stopped

IDLE_S = 0.002  # how long a round that moved nothing waits before the next


class Session(Protocol):
    finished: bool
    left: threading.Event

    def on_error(self, error: BaseException) -> None: ...


S = TypeVar("S", bound=Session)
_RUNNING: ExitList[SessionThread] = ExitList(lambda owner: owner.close())


class SessionThread(Generic[S]):
    """Subclasses give `_round` (one round of work over the live sessions), and may give
    `_context` (entered on the thread around its rounds), `_after_round` and `_released` (a
    session the thread has let go, before `left` is set). A session that fails (`_fail`)
    leaves at the end of the round; its error goes to its `on_error` unless it was stopped."""

    thread_name = "voxlet-sessions"
    what = "the session thread"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._joining: list[S] = []
        self._live: list[S] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._retired: threading.Thread | None = None  # the last thread that ended idle

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._live) + len(self._joining)

    def notify(self) -> None:
        """Something new for the thread (work queued, a session stopped)."""
        self._wake.set()

    def _admit(self, session: S) -> None:
        """Adds `session` for the next round (the caller holds no lock), starting the thread
        if none runs."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.what} is closed")
            self._joining.append(session)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=self.thread_name, daemon=True
                )
                self._thread.start()
                _RUNNING.add(self)
        self._wake.set()

    def leave(self, session: S, timeout_s: float) -> bool:
        """Waits until the thread has let `session` go (it was stopped or has ended) and, if
        that left the thread idle, for the thread to end. False on timeout."""
        self._wake.set()
        if not session.left.wait(timeout_s):
            return False
        with self._lock:
            retired = self._retired
        if retired is not None and retired is not threading.current_thread():
            retired.join(timeout_s)
            return not retired.is_alive()
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout_s)
        _RUNNING.discard(self)

    # hooks -----------------------------------------------------------------------------------

    def _round(self, live: list[S]) -> bool:
        """One round of work; True if anything moved."""
        raise NotImplementedError

    def _context(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def _after_round(self, live: list[S], progressed: bool) -> None:
        pass

    def _released(self, session: S) -> None:
        pass

    def _fail(self, session: S, error: BaseException) -> None:
        session.finished = True
        if not isinstance(error, Stopped):
            session.on_error(error)

    # the thread ------------------------------------------------------------------------------

    def _serve(self) -> None:
        with self._context():
            self._loop()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    live = self._live + self._joining
                    self._live, self._joining = [], []
                    self._thread = None
                    break
                self._live.extend(self._joining)
                self._joining.clear()
                live = list(self._live)
            progressed = self._round(live)
            self._after_round(live, progressed)
            with self._lock:
                gone = [s for s in self._live if s.finished]
                self._live = [s for s in self._live if not s.finished]
                idle = not self._live and not self._joining
                if idle:  # retire before saying who left: `leave` then joins this thread
                    self._thread = None
                    self._retired = threading.current_thread()
                    _RUNNING.discard(self)
            for s in gone:
                self._released(s)
                s.left.set()
            if idle:
                return
            if not progressed:
                self._wake.wait(IDLE_S)
                self._wake.clear()
        for s in live:
            if not s.finished:
                self._fail(s, RuntimeError(f"{self.what} was closed"))
            self._released(s)
            s.left.set()
