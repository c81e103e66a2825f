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
    """Calls `on_audio(pcm)` for each frame on thread "voxlet-sink"."""

    def __init__(self, stream: Stream, on_audio: Callable[[npt.NDArray[np.float32]], object]):
        self._stream = stream
        self._on_audio = on_audio
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voxlet-sink")

    def _run(self) -> None:
        try:
            for pcm in self._stream.frames():
                self._on_audio(pcm)
        except StreamError:
            pass  # the stream keeps its own error; Speech.wait raises it
        except BaseException as e:
            self.error = e
            self._stream.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stream.stop()
        if threading.current_thread() is not self._thread:
            self._thread.join()

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
        """Cuts speech off now; returns once both worker threads have ended."""
        self.stream.stop()
        self.player.stop()

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
