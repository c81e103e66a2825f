"""`Stream`: one utterance in flight, a client of an `Engine`.

    text chunks -> [engine thread: FlowLM, batched with the engine's other streams]
    -> bounded queue of Latent -> [decoder thread: Mimi, batched likewise]
    -> PcmPipeline (Rust: resample -> SPSC ring) -> reader (the caller's iterator, or a callback)

Stopping (break out of the iterator, `stop()`, Ctrl-C, or leaving the `with` block) ends the
stream's work within about one frame, and a stopped stream hands out no more audio (what was
buffered is dropped); no thread outlives its stream (an engine's thread ends with its last
stream, and the engine's decoder likewise). The first failure in either stage (FlowLM on the
engine, or the decoder) stops the other and is raised in the caller as `StreamError(stage)`
with the original as cause. A stream never
read nor stopped does not keep the interpreter alive: the workers are daemon threads, and every
stream still running at exit is stopped and joined first (an `atexit` hook, registered when the
first stream starts).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from voxlet._process import usable_cores
from voxlet.audio import PcmPipeline
from voxlet.constants import FRAME_RATE_HZ, SAMPLE_RATE_HZ
from voxlet.errors import ConfigError, StreamError
from voxlet.runtime.at_exit import ExitList
from voxlet.runtime.decoder import DecoderSession
from voxlet.runtime.engine import Engine, EngineSession, PlanSource
from voxlet.runtime.messages import Message
from voxlet.runtime.threads import FirstFrame
from voxlet.runtime.word_clock import WordTiming

log = logging.getLogger(__name__)
_WAIT_S = 0.05
# streams whose threads may still run: stopped at exit
_LIVE: ExitList[Stream] = ExitList(lambda stream: stream.stop())


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How a stream runs (not what it says).

    Args:
        output_rate_hz: sample rate of the audio handed out; resampled from 24 kHz if different.
        max_latents_in_flight: bound of the latent queue between the two threads.
        max_frames_per_decode: the most latents decoded together in one Mimi call; groups grow
            1, 1, 2, 4, ... up to it. Bigger groups raise throughput; the audio differs from
            frame-by-frame decoding (1) only by float rounding (about 1e-6), and is the same from
            run to run either way. A group waits for its last frame, so a sink that must not
            starve on a machine barely faster than real time wants 1.
        ring_capacity_s: seconds of audio the output ring holds before the decoder waits.
        flowlm_threads / mimi_threads: compute threads of each worker thread.
        first_frame_threads: compute threads for the first frame, whose prefill, step and decode
            run one after another rather than side by side (None: both stages' threads, at most
            the cores this process may use).
        join_timeout_s: how long stopping waits for the threads before giving up loudly.
    """

    output_rate_hz: int = SAMPLE_RATE_HZ
    max_latents_in_flight: int = 8
    max_frames_per_decode: int = 4
    ring_capacity_s: float = 2.0
    flowlm_threads: int = 1
    mimi_threads: int = 1
    first_frame_threads: int | None = None
    join_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1000 <= self.output_rate_hz <= 768_000:
            raise ConfigError(f"output_rate_hz: must be 1000..768000, got {self.output_rate_hz}")
        if min(self.max_latents_in_flight, self.max_frames_per_decode) < 1:
            raise ConfigError("max_latents_in_flight and max_frames_per_decode must be >= 1")
        if self.ring_capacity_s <= 0:
            raise ConfigError("ring_capacity_s must be positive")
        if self.flowlm_threads < 1 or self.mimi_threads < 1:
            raise ConfigError("flowlm_threads and mimi_threads must be >= 1")
        if self.first_frame_threads is not None and self.first_frame_threads < 1:
            raise ConfigError("first_frame_threads must be >= 1 (or None)")

    @property
    def frame_samples(self) -> int:
        """Output samples per 80 ms frame at the output rate (1920 at 24 kHz)."""
        return round(self.output_rate_hz / FRAME_RATE_HZ)


def _usable_cores(opts: StreamOptions) -> int:
    return max(1, min(opts.flowlm_threads + opts.mimi_threads, usable_cores()))


@dataclass(slots=True)
class StreamStats:
    """Timings of one stream, filled in while it runs. Time stamps are `time.monotonic()`
    seconds (CLOCK_MONOTONIC, comparable across processes); durations are seconds."""

    started_at: float = 0.0
    first_audio_at: float | None = None
    latent_times: list[float] = field(default_factory=list)
    flowlm_step_s: list[float] = field(default_factory=list)
    mimi_frame_s: list[float] = field(default_factory=list)

    @property
    def first_audio_ms(self) -> float | None:
        if self.first_audio_at is None:
            return None
        return 1000 * (self.first_audio_at - self.started_at)


class Stream:
    """Speech for one text, produced by two worker threads while the caller consumes it."""

    def __init__(
        self,
        engine: Engine,
        voice: Any,
        plans: PlanSource,
        seed: int,
        options: StreamOptions | None = None,
        speed: float = 1.0,
        word_timings: bool = False,
    ):
        """Joins `engine`, which makes the latents; decodes them on a thread of its own with
        the engine's model. `voice`: a voice state of that model. `word_timings`: time the
        words the plans carry, for `items()`."""
        self.options = options or StreamOptions()
        opts = self.options
        self.stats = StreamStats(started_at=time.monotonic())
        capacity = max(int(opts.ring_capacity_s * opts.output_rate_hz), 2 * opts.frame_samples)
        self.pipeline = PcmPipeline(SAMPLE_RATE_HZ, opts.output_rate_hz, capacity, speed=speed)
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=opts.max_latents_in_flight)
        self._stop = threading.Event()
        self._data = threading.Event()
        self._decoded = threading.Event()
        self._lock = threading.Lock()
        self._error: tuple[str, BaseException] | None = None
        self._closed = False
        self._stopped = False
        self._words: deque[WordTiming] = deque()  # timed, not yet handed out
        # the relay: the engine uses these cores for this stream's first frame if it is alone
        first = FirstFrame(opts.first_frame_threads or _usable_cores(opts))
        self._threads: list[threading.Thread] = []
        self._session = EngineSession(
            voice,
            plans,
            seed,
            self._queue,
            self._stop,
            lambda error: self._fail("flowlm", error),
            self._on_step,
            self._on_words if word_timings else None,
            speed,
            first,
        )
        self._decoding = DecoderSession(
            self._queue,
            self.pipeline,
            self._stop,
            first,
            lambda error: self._fail("mimi", error),
            self._on_decoded,
            self._on_frame,
            opts.max_frames_per_decode,
            opts.mimi_threads,
            opts.output_rate_hz / SAMPLE_RATE_HZ / speed,
        )
        if self._session.planner is not None:  # joined on close
            self._threads.append(self._session.planner)
        self._engine: Engine | None = None
        _LIVE.add(self)
        for t in self._threads:
            t.start()
        try:
            engine.decoder.join(self._decoding)
        except BaseException:  # neither stage ever held the stream
            self._session.left.set()
            self._decoding.left.set()
            self.stop()
            raise
        self._engine = engine
        try:
            engine.join(self._session)
        except BaseException:
            self._session.left.set()  # the engine never held it; the decoder lets it go
            self.stop()
            raise

    def _on_decoded(self) -> None:
        """The decoder has let this stream go: all decoded, stopped, or failed."""
        self._decoded.set()
        self._data.set()

    def _on_step(self, seconds: float) -> None:
        self.stats.flowlm_step_s.append(seconds)
        self.stats.latent_times.append(time.monotonic())

    def _on_words(self, words: list[WordTiming]) -> None:
        self._words.extend(words)

    def _on_frame(self, index: int, seconds: float) -> None:
        self.stats.mimi_frame_s.append(seconds)
        self._data.set()

    def _halt(self) -> None:
        """Tells both stages to stop and wakes a decoder waiting for ring space."""
        self._stop.set()
        self.pipeline.cancel()
        if self._engine is not None:
            self._engine.decoder.notify()

    def _fail(self, stage: str, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = (stage, error)
        self._halt()
        self._data.set()

    # Reader side --------------------------------------------------------------------------

    def wait_for_audio(self, n_frames: int, timeout_s: float | None = None) -> bool:
        """Blocks until `n_frames` output frames are buffered or decoding has ended."""
        deadline = None if timeout_s is None else time.perf_counter() + timeout_s
        while self.pipeline.available_frames < n_frames and not self._decoded.is_set():
            self._data.clear()
            if self.pipeline.available_frames >= n_frames or self._decoded.is_set():
                break
            remaining = None if deadline is None else deadline - time.perf_counter()
            if remaining is not None and remaining <= 0:
                return False
            self._data.wait(_WAIT_S if remaining is None else min(_WAIT_S, remaining))
        return True

    def mark_first_audio(self) -> None:
        """Records now as the moment audio first left the stream (for players)."""
        if self.stats.first_audio_at is None:
            self.stats.first_audio_at = time.monotonic()

    def frames(self) -> Iterator[npt.NDArray[np.float32]]:
        """Yields float32 mono frames of `options.frame_samples` (the last may be shorter)."""
        return cast(Iterator[npt.NDArray[np.float32]], self._read(with_words=False))

    def items(self) -> Iterator[npt.NDArray[np.float32] | WordTiming]:
        """As `frames()`, with a `WordTiming` for each word of the text (a stream made with
        `word_timings=True`), in order, each handed out before the audio after its chunk's
        speech: the end of the chunk's words is known when its end-of-speech frame is made,
        before that frame's audio can be read."""
        return self._read(with_words=True)

    def take_words(self) -> list[WordTiming]:
        """The word timings made so far and not yet handed out (for a reader that takes the
        audio another way, such as a device player)."""
        words = []
        while self._words:
            words.append(self._words.popleft())
        return words

    def _read(self, with_words: bool) -> Iterator[npt.NDArray[np.float32] | WordTiming]:
        size = self.options.frame_samples
        try:
            while not self._stopped:
                self.wait_for_audio(size)
                if self._error is not None or self._stopped:
                    break
                while with_words and self._words and not self._stopped:
                    yield self._words.popleft()
                if self._stopped:  # stopped while a word was out
                    break
                buf = np.empty(size, np.float32)
                n = self.pipeline.pop_into(buf)
                if n == 0:
                    if self._decoded.is_set() and self.pipeline.available_frames == 0:
                        break
                    continue
                self.mark_first_audio()
                yield buf[:n]
            while with_words and self._words and self._error is None and not self._stopped:
                yield self._words.popleft()
        finally:
            self.close()
        self.raise_if_failed()

    __iter__ = frames

    # Control --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops generation now and joins both threads; no more audio is handed out."""
        self._stopped = True
        self._halt()
        self.close()

    def wait(self, timeout_s: float | None = None) -> None:
        """Waits for decoding to finish (the audio may still sit in the ring), then raises any
        worker failure."""
        if not self._decoded.wait(timeout_s):
            raise TimeoutError("stream did not finish in time")
        self.raise_if_failed()

    def close(self) -> None:
        """Joins both threads (stopping them if they still run)."""
        if self._closed:
            return
        if not self._decoded.is_set() or self._error is not None:
            self._halt()
        timeout = self.options.join_timeout_s
        for t in self._threads:
            t.join(timeout)
            if t.is_alive():
                log.error("thread %s did not stop within %.1f s", t.name, timeout)
        if self._engine is not None:
            if not self._engine.leave(self._session, timeout):
                log.error("the engine did not let the stream go within %.1f s", timeout)
            if not self._engine.decoder.leave(self._decoding, timeout):
                log.error("the decoder did not let the stream go within %.1f s", timeout)
        self._closed = True
        _LIVE.discard(self)

    def raise_if_failed(self) -> None:
        if self._error is not None:
            stage, error = self._error
            raise StreamError(stage, f"{type(error).__name__}: {error}") from error

    @property
    def failed(self) -> bool:
        """Whether a worker thread failed (`raise_if_failed` raises its error)."""
        return self._error is not None

    @property
    def is_alive(self) -> bool:
        """Whether any stage still works for this stream (its planning thread, the engine or
        the decoder)."""
        return (
            any(t.is_alive() for t in self._threads)
            or not self._session.left.is_set()
            or not self._decoding.left.is_set()
        )

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
