"""Admission control: at most `max_sessions` streams at once, at most `max_waiting` requests
waiting for one (first come, first served), each for at most `queue_wait_s`; past that, `Busy`.
Runs on the server's event loop (no locks)."""

from __future__ import annotations

import asyncio
from collections import deque


class Busy(Exception):
    """No session free, and the queue is full or the wait ran out."""


class Ticket:
    """A held session; `release()` is idempotent."""

    def __init__(self, admission: Admission):
        self._admission: Admission | None = admission

    def release(self) -> None:
        if self._admission is not None:
            admission, self._admission = self._admission, None
            admission._release()


class Admission:
    def __init__(self, max_sessions: int, max_waiting: int, queue_wait_s: float):
        self.max_sessions = max_sessions
        self.max_waiting = max_waiting
        self.queue_wait_s = queue_wait_s
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def acquire(self) -> Ticket:
        if self.active < self.max_sessions and not self._waiting:
            self.active += 1
            return Ticket(self)
        if len(self._waiting) >= self.max_waiting:
            raise Busy(
                f"server busy: {self.active} sessions running and {len(self._waiting)} waiting"
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.queue_wait_s)
        except TimeoutError:
            if self._give_up(turn):
                raise Busy(f"server busy: no session free within {self.queue_wait_s:g} s") from None
        except asyncio.CancelledError:
            if not self._give_up(turn):  # handed a session as it was cancelled: pass it on
                self._release()
            raise
        return Ticket(self)

    def _give_up(self, turn: asyncio.Future[None]) -> bool:
        """True where `turn` was still waiting (it no longer is); False where it had just been
        handed a session."""
        if turn.done():
            return False
        turn.cancel()
        self._waiting.remove(turn)
        return True

    def _release(self) -> None:
        while self._waiting:  # hand the session straight to the next in line
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.active -= 1
