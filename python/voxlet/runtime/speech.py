"""`Speech`: a background utterance with `stop()` / `wait()`, for barge-in in assistants.

A player reads the stream's audio: `CallbackPlayer` hands each frame to a callback from its own
thread ("voxlet-sink"); `sinks.device.DevicePlayer` plays it from the audio device's callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voxlet.errors import StreamError
from voxlet.runtime.stream import Stream


class Player(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wait(self, timeout_s: float | None = None) -> bool: ...


class CallbackPlayer:
    """Calls `on_audio(pcm)` for each frame on thread "voxlet-sink" (a daemon thread: a
    callback that never returns cannot keep the process alive).

    `stop()` ends the calls: none starts after it returns. It waits for a call in progress
    at most `stop_wait_s` (one frame by default) and leaves a slower one to finish alone.
    """

    def __init__(
        self,
        stream: Stream,
        on_audio: Callable[[npt.NDArray[np.float32]], object],
        stop_wait_s: float = 0.08,
    ):
        self._stream = stream
        self._on_audio = on_audio
        self._stop_wait_s = stop_wait_s
        self._stopped = threading.Event()
        self._calling = threading.Lock()  # held during each on_audio call
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voxlet-sink", daemon=True)

    def _run(self) -> None:
        try:
            for pcm in self._stream.frames():
                with self._calling:
                    if self._stopped.is_set():
                        break
                    self._on_audio(pcm)
        except StreamError:
            pass  # the stream keeps its own error; Speech.wait raises it
        except BaseException as e:
            self.error = e
            self._stream.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # Under the lock, the flag is set between two calls, so no call starts after this;
        # if a call holds the lock past stop_wait_s, the loop sees the flag once it returns.
        inside = threading.current_thread() is self._thread  # on_audio itself called stop()
        got = not inside and self._calling.acquire(timeout=self._stop_wait_s)
        self._stopped.set()
        if got:
            self._calling.release()
        self._stream.stop()
        if not inside:
            self._thread.join(self._stop_wait_s)

    def wait(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


class Speech:
    """A handle on speech playing in the background."""

    def __init__(self, stream: Stream, player: Player):
        self.stream = stream
        self.player = player
        player.start()

    def stop(self) -> None:
        """Cuts speech off now: no audio is delivered after it returns, which is once both
        worker threads have ended (within about one frame)."""
        self.player.stop()
        self.stream.stop()

    def wait(self, timeout_s: float | None = None) -> None:
        """Blocks until everything has been played (or handed to the callback).

        Raises:
            StreamError: a stage failed ("flowlm", "mimi" or "sink").
            TimeoutError: still playing after `timeout_s`.
        """
        if not self.player.wait(timeout_s):
            raise TimeoutError("speech still playing")
        self.stream.close()
        self.stream.raise_if_failed()
        error = getattr(self.player, "error", None)
        if error is not None:
            raise StreamError("sink", f"{type(error).__name__}: {error}") from error

    @property
    def is_playing(self) -> bool:
        return self.stream.is_alive or not self.player.wait(0)

    def __enter__(self) -> Speech:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
