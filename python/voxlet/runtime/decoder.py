"""`Decoder`: one Mimi thread ("voxlet-decoder") for every stream of an engine, decoding the
frames that are ready as one batch (`SpeechModel.decode_batch`: the native SEANet decoder shares
the streams out among the cores) and pushing each stream's audio into its Rust pipeline.

    engine thread -> each stream's bounded Latent queue -> [decoder thread] -> PcmPipeline

A stream's latents are decoded in groups of 1, 1, 2, 4, ... up to its `max_batch` (bigger matrix
products, same audio to float rounding). The grouping depends only on how many frames came before,
never on thread timing or on the other streams, so a stream's audio is bit-repeatable and the same
whoever shares its batches; the small first groups keep the first frames early. A `Silence` ends
the group before it and goes into the pipeline as zeros (the decoder state runs on).

The thread never waits on one stream: a group is decoded only once it is complete and its
stream's ring has room for the audio, so a listener who is ahead (or gone) holds nobody else.
Per round, the streams with the least audio buffered come first. A stream alone whose first
frame the engine made with both stages' cores (`FirstFrame`) gets them for its first decode too.
The thread exists only while streams are on it: it ends when the last one leaves.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxlet._process import release_free_heap, usable_cores
from voxlet.audio import AudioError, PcmPipeline
from voxlet.constants import FADE_IN_SAMPLES, FRAME_RATE_HZ, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from voxlet.runtime.messages import End, Latent, Silence
from voxlet.runtime.model import SpeechModel
from voxlet.runtime.session_thread import SessionThread
from voxlet.runtime.threads import FirstFrame, Stopped

# Output frames kept free beyond a group's estimate before it is decoded: the time stretch and
# the resampler may hand out a little more than the input's length at once (the stretch at
# most a window, 720 samples).
ROOM_MARGIN_FRAMES = 1024
# A stream whose audio decoded so far is this far ahead of real time (since its first frame)
# waits while newcomers' first frames are decoded.
RELAXED_LEAD_S = 0.2
_FADE = np.linspace(0, 1, FADE_IN_SAMPLES, dtype=np.float32)


def group_size(decoded: int, max_batch: int) -> int:
    """Frames in the next decode after `decoded` frames: 1, 1, 2, 4, 8, ... capped at max_batch."""
    if decoded < 2:
        return 1
    return min(max_batch, 1 << (decoded.bit_length() - 1))


@dataclass(eq=False)
class DecoderSession:
    """One stream's decoder side: its latent queue in, its pipeline out."""

    inbox: queue.Queue[Any]  # Latent, Silence and End messages from the engine
    pipeline: PcmPipeline
    stop: threading.Event
    first: FirstFrame
    on_error: Callable[[BaseException], None]
    on_end: Callable[[], None]  # once, on the decoder thread, when the stream leaves it
    on_frame: Callable[[int, float], None] | None = None
    max_batch: int = 4
    threads: int = 1  # compute threads when this stream is decoded alone
    output_per_input: float = 1.0  # output frames per 24 kHz sample (rate ratio / speed)
    state: Any = None  # the model's decoder state, made when the stream joins
    decoded: int = 0
    started: float | None = None  # time.monotonic() of the first audio pushed
    group: list[Latent] = field(default_factory=list)
    cut: Silence | None = None  # the pause that ended the group being gathered
    silence: int = 0  # samples of a pause still to push
    ended: bool = False  # End taken: the stream has no more latents
    finished: bool = False
    left: threading.Event = field(default_factory=threading.Event)

    def gather(self) -> bool:
        """Takes queued messages into the next group without waiting; True once the group is
        complete, or cut short by a pause or the end."""
        size = group_size(self.decoded, self.max_batch)
        while len(self.group) < size and self.cut is None and not self.ended:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return False
            if isinstance(message, End):
                self.ended = True
            elif isinstance(message, Silence):
                self.cut = message
            else:
                self.group.append(message)
        return True

    def lead_s(self, now: float) -> float:
        """Seconds of audio pushed beyond real time since the first (-inf before it)."""
        if self.started is None:
            return float("-inf")
        return self.decoded / FRAME_RATE_HZ - (now - self.started)

    def room_for(self, samples: int) -> bool:
        """Whether the ring can take `samples` 24 kHz samples' audio without waiting."""
        free = self.pipeline.free_frames
        needed = int(samples * self.output_per_input) + 1 + ROOM_MARGIN_FRAMES
        return free >= min(needed, self.pipeline.capacity_frames)

    def room(self) -> int:
        """24 kHz samples whose audio the ring can take now without waiting (a pause's share;
        a ring too small for the margin takes audio only when empty)."""
        free, capacity = self.pipeline.free_frames, self.pipeline.capacity_frames
        usable = (
            free - ROOM_MARGIN_FRAMES
            if capacity > 2 * ROOM_MARGIN_FRAMES
            else free * (free == capacity)
        )
        return max(0, int(usable / self.output_per_input))

    def push(self, audio: np.ndarray) -> None:
        try:
            self.pipeline.push(audio)
        except AudioError as e:  # cancelled while waiting for room
            if self.pipeline.is_cancelled:
                raise Stopped from e
            raise


class Decoder(SessionThread[DecoderSession]):
    """Decodes the latents of every stream on it on one thread (`threads`: the most compute
    threads a batch of several streams runs on; None: the cores this process may use)."""

    thread_name = "voxlet-decoder"
    what = "the engine's decoder"

    def __init__(self, model: SpeechModel, threads: int | None = None):
        super().__init__()
        self._model = model
        self._threads = threads
        self.batches = 0  # decode calls made
        self.groups = 0  # stream groups decoded in them

    def join(self, session: DecoderSession) -> None:
        if self._closed:
            raise RuntimeError(f"{self.what} is closed")
        session.state = self._model.decoder_state()
        self._admit(session)

    # The decoder thread --------------------------------------------------------------------

    def _context(self) -> contextlib.AbstractContextManager[object]:
        return self._model.inference()

    def _released(self, s: DecoderSession) -> None:
        release_free_heap()  # this stream's freed activations, before the next's
        s.on_end()

    def _round(self, live: list[DecoderSession]) -> bool:
        """Every stream's pauses and ends moved on, then one batched decode of the groups
        that are complete and have room. True if anything moved."""
        moved = False
        ready: list[DecoderSession] = []
        for s in live:
            try:
                if s.stop.is_set():
                    s.finished = True
                    continue
                moved |= self._advance(s)
                if not s.finished and s.group and s.silence == 0 and s.gather():
                    if s.room_for(len(s.group) * SAMPLES_PER_FRAME):
                        ready.append(s)
            except BaseException as e:
                self._fail(s, e)
        if not ready:
            return moved
        if any(s.decoded == 0 for s in ready):  # first frames: the streams well ahead wait
            now = time.monotonic()
            ready = [s for s in ready if s.lead_s(now) <= RELAXED_LEAD_S]
        ready.sort(key=lambda s: s.pipeline.available_frames)  # the least audio buffered first
        self._decode(ready, alone=len(live) == 1)
        return True

    def _advance(self, s: DecoderSession) -> bool:
        """Pushes what a pause has room for, and ends the stream once all is decoded; gathers
        the next group. True if anything moved."""
        moved = False
        while not s.finished:
            if s.silence > 0:
                n = min(s.silence, s.room(), SAMPLE_RATE_HZ)
                if n <= 0:
                    return moved
                s.push(np.zeros(n, np.float32))
                s.silence -= n
                moved = True
                continue
            if not s.gather() or s.group:
                return moved
            # an empty group: a pause or the end came first
            if s.cut is not None:
                s.silence, s.cut = s.cut.samples, None
                moved = True
                continue
            if not s.room_for(0):
                return moved
            s.pipeline.finish()
            s.finished = True
            return True
        return moved

    def _decode(self, ready: list[DecoderSession], alone: bool) -> None:
        model = self._model
        relay = alone and ready[0].decoded == 0 and not ready[0].first.decoded.is_set()
        if relay:
            threads = ready[0].first.threads
        elif len(ready) == 1:
            threads = ready[0].threads
        else:
            threads = min(len(ready), self._threads or usable_cores())
        model.use_threads(threads)
        t0 = time.perf_counter()
        try:
            outputs = model.decode_batch([([m.latent for m in s.group], s.state) for s in ready])
        except BaseException as e:  # the batched call itself failed: every stream in it
            for s in ready:
                self._fail(s, e)
            return
        per_frame = (time.perf_counter() - t0) / sum(len(s.group) for s in ready)
        self.batches += 1
        self.groups += len(ready)
        for s, audio in zip(ready, outputs, strict=True):
            try:
                self._deliver(s, audio, per_frame)
            except BaseException as e:
                self._fail(s, e)

    def _deliver(self, s: DecoderSession, audio: np.ndarray, per_frame: float) -> None:
        group, s.group = s.group, []
        s.decoded += len(group)
        if s.started is None:
            s.started = time.monotonic()
        s.first.decoded.set()  # the relay, if any, is over
        if group[0].frame_index == 0:
            audio[:FADE_IN_SAMPLES] *= _FADE
        s.push(audio)
        if s.cut is not None:  # the pause after the group
            s.silence, s.cut = s.cut.samples, None
        if s.on_frame is not None:
            for m in group:
                s.on_frame(m.frame_index, per_frame)
