"""`Engine`: one FlowLM thread ("voxlet-engine") for many streams, stepping every stream that
needs a frame together (`SpeechModel.step_batch`: the native transformer takes all their rows in
one call, reading each weight once), continuous batching at the frame: a stream joins at the
next step and leaves as soon as it ends, fails or is stopped. Every stream is a client of an
engine: one of the model's own (`TTS` keeps one, shared by all its streams) or one made with
`TTS.engine()`.

Each stream keeps its own latent queue and PCM pipeline (`Stream`); the engine makes its
latents, and the engine's `Decoder` ("voxlet-decoder", runtime/decoder.py) decodes the frames
of every stream that are ready as one batch. A stream's latents are the same bits whoever else
is in the engine: its own seeded generator, its own plans, and `step_batch` gives every row the
bits of a step alone, whatever else shares the batch (and `decode_batch` its audio).

Work goes earliest deadline first: a newcomer's first frame is due FIRST_AUDIO_S after it
joined, a speaking stream's next frame when a listener who started at its first frame needs it
(DECODE_S early). Each round does the most urgent unit: one chunk's text prefilled, whole on
every core if that ends before the next speaking stream's frame is due, together with every
other waiting text that still fits (`SpeechModel.prompt_batch`: one pass over the weights for
all, each state the bits of its own prefill), else PREFILL_SLICE tokens (so a long prompt
delays the others by a slice, not the whole text); or one batched
step of every stream with room for a frame (the least audio queued first; a stream whose
queue is full, its listener ahead, is skipped). Newcomers' first frames share one step, after
which the engine leaves the cores to the decoder until those are decoded. A text given whole
has its first chunk's state made on the joining thread (`EngineSession.prepare`). Text still
being written is planned on a thread of the stream's own ("voxlet-plans"), so waiting for text
never holds the others.

A stream alone in the engine gets the first-frame relay a stream's own FlowLM thread would
give it: its text prefilled whole and its first frame made with the cores of both stages
(`FirstFrame.threads`), then the engine waits (a frame at most) while the decoder uses them on
that frame. The engine's thread exists only while streams are open on it: it ends when the
last one leaves (`Engine.leave` joins it), and the next stream to join starts a new one.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxlet._process import usable_cores
from voxlet.constants import FRAME_RATE_HZ, SAMPLES_PER_FRAME
from voxlet.plan import ChunkEnd, ChunkPlan
from voxlet.runtime.decoder import Decoder
from voxlet.runtime.messages import End, Latent, Message, Silence
from voxlet.runtime.model import SpeechModel
from voxlet.runtime.session_thread import IDLE_S, SessionThread
from voxlet.runtime.threads import FirstFrame
from voxlet.runtime.word_clock import WordClock, WordTiming
from voxlet.text.markup import Pause

FRAME_S = 1 / FRAME_RATE_HZ
FIRST_AUDIO_S = 0.2  # a newcomer's first frame is due this long after it joined
DECODE_S = 0.04  # a frame is made this long before its audio is due, for the decoder
# A chunk's text is prefilled this many tokens per step of the others (never leaving a
# single one, which the int8 products would quantize differently), so a long prompt never
# holds their frames for long; the result is the bits of one whole prefill.
PREFILL_SLICE = 16
_PLANS_POLL_S = 0.05
_NO_MORE = object()
# The chunks and pauses of a stream: a list made up front, or (text still being written) a
# function of the stream's stop event that plans them as they are needed.
PlanSource = Sequence[ChunkPlan | Pause] | Callable[[threading.Event], Iterator[ChunkPlan | Pause]]


@dataclass(slots=True)
class _Chunk:
    plan: ChunkPlan
    state: Any  # the model's FlowLM state
    start: int  # the chunk's first sample on the stream's 24 kHz timeline
    end: ChunkEnd
    latent: Any = None  # the last latent made (None: BOS next)
    frame: int = 0
    prefix: Any = None  # text embedding rows (T, D) not prefilled yet


@dataclass(eq=False)
class EngineSession:
    """One stream's FlowLM side inside the engine."""

    voice: Any  # the model's voice state
    plans: PlanSource
    seed: int
    out: queue.Queue[Message]
    stop: threading.Event
    on_error: Callable[[BaseException], None]
    on_step: Callable[[float], None] | None = None
    on_words: Callable[[list[WordTiming]], None] | None = None
    speed: float = 1.0
    first: FirstFrame | None = None  # the stream's first-frame relay, used when it is alone
    left: threading.Event = field(init=False, default_factory=threading.Event)
    rng: Any = field(init=False)  # the stream's noise source, the model's kind
    clock: WordClock = field(init=False)
    position: int = 0
    frames: int = 0
    started: float | None = None  # time.monotonic() of the first frame
    joined: float = field(init=False, default_factory=time.monotonic)
    chunk_index: int = -1
    chunk: _Chunk | None = None
    pending: Message | None = None  # a message the full queue did not take yet
    finished: bool = False
    _source: Iterator[ChunkPlan | Pause] | None = None
    _peeked: object = None  # the first plan, taken by `prepare`
    _prepared: tuple[Any, Any] | None = None  # its chunk's state and text rows
    _planned: queue.Queue[object] | None = None  # plans from the stream's planning thread

    planner: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.clock = WordClock(self.speed)
        if callable(self.plans):  # the stream starts and joins this thread with its own
            self._planned = queue.Queue(maxsize=4)
            self.planner = threading.Thread(target=self._plan, name="voxlet-plans", daemon=True)
        else:
            self._source = iter(self.plans)

    def _plan(self) -> None:
        """Text still being written: plans made here, handed to the engine through a queue."""
        assert callable(self.plans)
        try:
            for plan in self.plans(self.stop):
                if not self._hand(plan):
                    return
            item: object = _NO_MORE
        except BaseException as e:  # raised on the engine thread, as the stream's failure
            item = e
        self._hand(item)

    def _hand(self, item: object) -> bool:
        """Puts `item` on the plan queue, waiting for room; False once the stream stops."""
        assert self._planned is not None
        while not self.stop.is_set():
            try:
                self._planned.put(item, timeout=_PLANS_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def prepare(self, model: SpeechModel) -> None:
        """On the joining thread, not the engine's: the first chunk's state (the voice's
        prefix copied into fresh caches) and its text's rows, for a text given whole."""
        if self._source is None:
            return
        self._peeked = next(self._source, _NO_MORE)
        if isinstance(self._peeked, ChunkPlan) and model.sliced_prefill:
            plan = self._peeked
            self._prepared = (model.chunk_state(self.voice, plan), model.embed(plan))

    def next_plan(self) -> ChunkPlan | Pause | object | None:
        """The next plan; None if none is ready yet; _NO_MORE at the end."""
        if self._peeked is not None:
            item, self._peeked = self._peeked, None
            return item
        if self._source is not None:
            return next(self._source, _NO_MORE)
        assert self._planned is not None
        try:
            item = self._planned.get_nowait()
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def deadline(self, now: float) -> float:
        """When the next frame is due (time.monotonic()): a newcomer's first by
        FIRST_AUDIO_S after it joined; later ones as a listener who started playing at the
        first frame needs them, DECODE_S early."""
        if self.started is None:
            return self.joined + FIRST_AUDIO_S
        return self.started + self.frames * FRAME_S - DECODE_S

    def offer(self, message: Message) -> bool:
        """Puts `message` on the stream's queue if it has room (else keeps it for later)."""
        try:
            self.out.put_nowait(message)
            return True
        except queue.Full:
            self.pending = message
            return False


class Engine(SessionThread[EngineSession]):
    """Steps the FlowLM of every stream opened on it (`Stream(..., engine=engine)`) on one
    thread, and owns their decoder. `close()` stops both; streams still open on it fail."""

    thread_name = "voxlet-engine"
    what = "the engine"

    def __init__(self, model: SpeechModel, threads: int = 1, decoder_threads: int | None = None):
        super().__init__()
        self._model = model
        self._threads = threads
        # the streams' Mimi side: one thread, batched, beside this one
        self.decoder = Decoder(model, decoder_threads)
        self._token_s = 0.001  # seconds per token of the whole prefills so far
        self._whole_threads = threads
        self.steps = 0  # batched steps taken
        self.rows = 0  # stream frames made in them

    @property
    def model(self) -> SpeechModel:
        return self._model

    def join(self, session: EngineSession) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")
        session.prepare(self._model)  # here, while the engine thread steps the others
        session.rng = self._model.rng(session.seed)
        session.joined = time.monotonic()
        self._admit(session)

    def close(self, timeout_s: float = 10.0) -> None:
        super().close(timeout_s)
        self.decoder.close(timeout_s)

    # The engine thread ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _context(self) -> Iterator[None]:
        self._model.use_threads(self._threads)
        with self._model.inference():
            yield

    def _after_round(self, live: list[EngineSession], progressed: bool) -> None:
        if progressed:
            self.decoder.notify()
            self._let_first_frames_decode(live)

    def _let_first_frames_decode(self, live: list[EngineSession]) -> None:
        """After newcomers' first frames: the cores are the decoder's until it has decoded
        them, unless a stream already speaking is due, another joins, or a frame's time
        passes (the relay's rule, for several streams)."""
        firsts = [s.first for s in live if s.frames == 1 and s.first is not None]
        waiting = [f for f in firsts if not f.decoded.is_set()]
        if not waiting or len(live) == 1:  # a stream alone: its relay does this
            return
        end = time.monotonic() + FRAME_S
        for first in waiting:
            while not first.decoded.wait(IDLE_S):
                now = time.monotonic()
                due = min((s.deadline(now) for s in live if s.frames > 1), default=math.inf)
                if now >= min(end, due) or self._joining or self._closed:
                    return
                if any(s.stop.is_set() for s in live):
                    return

    def _round(self, live: list[EngineSession]) -> bool:
        """One round: every stream brought to a chunk, then one batched step for those with
        room for a frame. True if anything moved."""
        relay = self._relay(live)
        # a whole prefill's threads: the relay's, else every core
        self._whole_threads = relay.threads if relay else max(self._threads, usable_cores())
        if relay is not None:
            self._model.use_threads(relay.threads)
        try:
            return self._work(live, alone=len(live) == 1)
        finally:
            if relay is not None:
                self._end_relay(live[0], relay)

    def _relay(self, live: list[EngineSession]) -> FirstFrame | None:
        """The first-frame relay of a stream alone in the engine before its first frame."""
        if len(live) != 1 or self._joining:
            return None
        s = live[0]
        first = s.first
        if first is None or first.decoded.is_set() or s.frames > 0 or s.finished:
            return None
        return first

    def _end_relay(self, s: EngineSession, first: FirstFrame) -> None:
        """Once the stream's first frame is made: the decoder's turn with the cores (ends
        when it has decoded it, the stream stops, or another stream joins); then back to the
        engine's own thread count."""
        if s.frames > 0:
            while not first.decoded.wait(_PLANS_POLL_S):
                if s.stop.is_set() or s.finished or self._joining or self._closed:
                    break
        self._model.use_threads(self._threads)

    def _work(self, live: list[EngineSession], alone: bool) -> bool:
        """The most urgent work first (earliest deadline): one newcomer's text prefilled, or
        one batched step of every stream with room for a frame."""
        moved = False
        stepping: list[EngineSession] = []  # text all in, room for a frame
        filling: list[EngineSession] = []  # a chunk's text still to prefill
        for s in live:
            try:
                if s.stop.is_set():
                    s.finished = True
                    continue
                if s.pending is not None:
                    message, s.pending = s.pending, None
                    if not s.offer(message):
                        continue
                    moved = True
                    if isinstance(message, End):
                        s.finished = True
                        continue
                if s.chunk is None:
                    moved |= self._advance(s, alone)
                if s.chunk is None or s.finished:
                    continue
                if s.chunk.prefix is not None:
                    filling.append(s)
                elif s.out.qsize() < s.out.maxsize:
                    stepping.append(s)
            except BaseException as e:
                self._fail(s, e)
        if filling:
            now = time.monotonic()
            filling.sort(key=lambda s: s.deadline(now))
            s = filling[0]
            # newcomers' first frames wait for the others' texts, so they share one step;
            # a stream already speaking is stepped when its frame is due first
            due = min((x.deadline(now) for x in stepping if x.frames > 0), default=math.inf)
            if s.deadline(now) <= due:
                # all of it on every core if that ends before the next frame is due, with the
                # other texts that fit too (one pass over the weights for all)
                batch = self._whole_batch(filling, due - now)
                try:
                    if batch:
                        self._prefill_whole(batch)
                    else:
                        assert s.chunk is not None
                        self._prefill(s.chunk)
                except BaseException as e:
                    for x in batch or [s]:
                        self._fail(x, e)
                return True
        if not stepping:
            return moved
        stepping.sort(key=lambda s: s.out.qsize())  # the least audio queued first
        try:
            results = self._step(stepping)
        except BaseException as e:  # the batched call itself failed: every stream in it
            for s in stepping:
                self._fail(s, e)
            return True
        for s, (latent, eos_logit, seconds) in zip(stepping, results, strict=True):
            try:
                self._emit(s, latent, eos_logit, seconds)
            except BaseException as e:  # this stream's frame (NaN, no EOS): this stream only
                self._fail(s, e)
        return True

    def _advance(self, s: EngineSession, alone: bool) -> bool:
        """Takes the stream's next plans until a chunk is prompted, the queue is full, no plan
        is ready yet, or the plans end (End queued). True if anything moved."""
        moved = False
        while s.chunk is None and not s.finished and s.pending is None:
            plan = s.next_plan()
            if plan is None:
                return moved
            moved = True
            if plan is _NO_MORE:
                if s.offer(End(s.frames)):
                    s.finished = True
                return True
            if isinstance(plan, Pause):
                s.position += plan.samples
                s.offer(Silence(plan.samples))
                continue
            assert isinstance(plan, ChunkPlan)
            s.chunk_index += 1
            s.chunk = self._prompt(s, plan, alone)
        return moved

    def _prompt(self, s: EngineSession, plan: ChunkPlan, alone: bool) -> _Chunk:
        """A chunk's state, its text prefilled now (a stream alone, short texts) or (native
        stacks, others waiting) slice by slice between steps (`_prefill`)."""
        model = self._model
        if s._prepared is not None:  # the first chunk's, made when the stream joined
            (state, rows), s._prepared = s._prepared, None
            return _Chunk(plan, state, s.position, ChunkEnd(plan), prefix=rows)
        n_tokens = int(plan.token_ids.shape[0])
        if alone or not model.sliced_prefill or n_tokens <= PREFILL_SLICE + 1:
            return _Chunk(plan, model.prompt_chunk(s.voice, plan), s.position, ChunkEnd(plan))
        state = model.chunk_state(s.voice, plan)
        return _Chunk(plan, state, s.position, ChunkEnd(plan), prefix=model.embed(plan))

    def _whole_batch(self, filling: list[EngineSession], budget_s: float) -> list[EngineSession]:
        """The streams whose texts go in whole now, most urgent first: the first if its text
        ends within `budget_s` (by the seconds per token whole prefills took so far; none yet:
        a guess of 1 ms), then each other whose text still fits, as the sum of their tokens.
        Together only texts of two tokens or more (the batch gives each the bits it gets
        alone). Empty: the first goes in a slice at a time."""
        batch: list[EngineSession] = []
        tokens = 0
        for s in filling:
            assert s.chunk is not None and s.chunk.prefix is not None
            n = int(s.chunk.prefix.shape[0])
            if (tokens + n) * self._token_s >= budget_s:
                if not batch:
                    return []
                continue
            if batch and (n < 2 or tokens < 2):
                continue
            batch.append(s)
            tokens += n
        return batch

    def _prefill_whole(self, batch: list[EngineSession]) -> None:
        """The streams' texts all in on every core, in one call."""
        chunks = [s.chunk for s in batch if s.chunk is not None]
        t0 = time.perf_counter()
        self._model.use_threads(self._whole_threads)
        try:
            self._model.prompt_batch([(c.prefix, c.state) for c in chunks])
        finally:
            self._model.use_threads(self._threads)
        tokens = sum(int(c.prefix.shape[0]) for c in chunks)
        self._token_s = 0.5 * self._token_s + 0.5 * (time.perf_counter() - t0) / tokens
        for c in chunks:
            c.prefix = None

    def _prefill(self, c: _Chunk) -> None:
        """The next slice of the chunk's text into its state."""
        assert c.prefix is not None
        n = c.prefix.shape[0]
        take = n if n <= PREFILL_SLICE + 1 else PREFILL_SLICE
        self._model.prompt(c.prefix[:take], c.state)
        c.prefix = c.prefix[take:] if take < n else None

    def _step(self, ready: list[EngineSession]) -> list[tuple[Any, float, float]]:
        """One batched FlowLM step of `ready` (each has a chunk): (latent, EOS logit, seconds
        per row) for each."""
        t0 = time.perf_counter()
        chunks = [s.chunk for s in ready if s.chunk is not None]
        assert len(chunks) == len(ready)
        # noise drawn per stream, from its own generator, before its step (as alone)
        model = self._model
        noises = [model.noise(c.plan, s.rng) for s, c in zip(ready, chunks, strict=True)]
        results: dict[int, tuple[Any, float]] = {}
        for lsd in sorted({c.plan.lsd_steps for c in chunks}):  # one batch per step count
            idx = [i for i, c in enumerate(chunks) if c.plan.lsd_steps == lsd]
            out = model.step_batch(
                [chunks[i].latent for i in idx],
                [chunks[i].state for i in idx],
                [noises[i] for i in idx],
                lsd,
            )
            results.update(zip(idx, out, strict=True))
        self.steps += 1
        self.rows += len(ready)
        per_row = (time.perf_counter() - t0) / len(ready)
        return [(*results[i], per_row) for i in range(len(ready))]

    def _emit(self, s: EngineSession, latent: Any, eos_logit: float, seconds: float) -> None:
        """The chunk's end-of-speech rule and the frame's way out, as
        `TTS.latents` does them for latents made on the caller's thread."""
        c = s.chunk
        assert c is not None
        i = c.frame
        if c.end.frame(i, self._model.finite(latent), eos_logit) and s.on_words is not None:
            s.on_words(s.clock.speech_ended(c.plan.words, c.start, i))
        if s.on_step is not None:
            s.on_step(seconds)
        s.offer(Latent(latent, s.chunk_index, s.frames))
        if s.started is None:
            s.started = time.monotonic()
        s.frames += 1
        s.position += SAMPLES_PER_FRAME
        c.latent = latent
        c.frame = i + 1
        if c.end.done(c.frame):
            s.chunk = None
            c.end.finish()
