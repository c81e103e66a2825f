"""`Speech`: a background utterance with `stop()` / `wait()`, for barge-in in assistants.

A player reads the stream's audio: `CallbackPlayer` hands each frame to a callback from its own
thread ("voxlet-sink"); `sinks.device.DevicePlayer` plays it from the audio device's callback.
With word timings, `WordCaller` tells a callback which word is starting, as it is played.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voxlet.errors import StreamError
from voxlet.runtime.stream import Stream
from voxlet.runtime.word_clock import WordTiming

_WORD_POLL_S = 0.01


class Player(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wait(self, timeout_s: float | None = None) -> bool: ...

    @property
    def position_s(self) -> float:
        """Seconds of the stream's audio played (or handed on) so far."""
        ...


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
        self._handed = 0  # samples handed to on_audio, the frame in its hands included
        self._thread = threading.Thread(target=self._run, name="voxlet-sink", daemon=True)

    @property
    def position_s(self) -> float:
        return self._handed / self._stream.options.output_rate_hz

    def _run(self) -> None:
        try:
            for pcm in self._stream.frames():
                with self._calling:
                    if self._stopped.is_set():
                        break
                    self._handed += len(pcm)
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


class WordCaller:
    """Calls `on_word(WordTiming)` on thread "voxlet-words" as the player reaches each word's
    start (checked every 10 ms), in order. `finish()` calls the words still due once all audio
    is played; `stop()` drops them. A failing `on_word` stops the speech; `error` keeps it."""

    def __init__(
        self,
        stream: Stream,
        player: Player,
        on_word: Callable[[WordTiming], object],
        halt: Callable[[], None],
    ):
        self._stream = stream
        self._player = player
        self._on_word = on_word
        self._halt = halt
        self._due: list[WordTiming] = []
        self._stopped = threading.Event()
        self._finished = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voxlet-words", daemon=True)

    def start(self) -> None:
        """Starts the thread (once the owner can be halted by it)."""
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                finished = self._finished.is_set()
                self._due.extend(self._stream.take_words())
                played = float("inf") if finished else self._player.position_s
                while self._due and self._due[0].start_s <= played:
                    if self._stopped.is_set():
                        return
                    self._on_word(self._due.pop(0))
                if finished:
                    return
                self._stopped.wait(_WORD_POLL_S)
        except BaseException as e:
            self.error = e
            self._halt()

    def finish(self, timeout_s: float | None = None) -> None:
        self._finished.set()
        self._thread.join(timeout_s)

    def stop(self) -> None:
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(_WORD_POLL_S * 10)


class Speech:
    """A handle on speech playing in the background; with `on_word`, that callback hears of
    each word (a `WordTiming`) as its audio starts playing (the stream must time its words)."""

    def __init__(
        self,
        stream: Stream,
        player: Player,
        on_word: Callable[[WordTiming], object] | None = None,
    ):
        self.stream = stream
        self.player = player
        player.start()
        self._words = None if on_word is None else WordCaller(stream, player, on_word, self.stop)
        if self._words is not None:  # started once `stop` can find it
            self._words.start()

    def stop(self) -> None:
        """Cuts speech off now: no audio is delivered after it returns, which is once both
        worker threads have ended (within about one frame); no word is called after it."""
        if self._words is not None:
            self._words.stop()
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
        try:
            self.stream.raise_if_failed()
        finally:
            if self._words is not None:  # the words still due, unless the stream failed
                if self.stream.failed:
                    self._words.stop()
                else:
                    self._words.finish(timeout_s)
        failed = None if self._words is None else self._words.error
        if failed is not None:
            raise StreamError("sink", f"on_word: {type(failed).__name__}: {failed}") from failed
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
