"""Thread "voxlet-flowlm": prompts each text chunk and steps FlowLM, putting `Latent`s on the queue
(and a `Silence` for each pause between chunks).

Owns every FlowLM state it creates. Chunks run back to back: the next chunk's text prefill
happens while the "mimi" thread is still decoding the queued latents of the current one.

The first frame is a relay (`FirstFrame`): this thread prefills and steps with the cores of both
stages while the decoder has nothing to do, then waits while the decoder uses them on that frame.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from voxlet.constants import SAMPLES_PER_FRAME
from voxlet.model.flow_lm import FlowLM
from voxlet.model.generation import ChunkPlan, generate_latents, prompt_chunk
from voxlet.model.voice import VoiceState
from voxlet.runtime.messages import End, Latent, Message, Silence
from voxlet.runtime.word_clock import WordClock, WordTiming
from voxlet.text.markup import Pause

QUEUE_POLL_S = 0.05
# The chunks and pauses of a stream: a list made up front, or (text still being written) a
# function of the stream's stop event that plans them as they are needed.
PlanSource = Sequence[ChunkPlan | Pause] | Callable[[threading.Event], Iterator[ChunkPlan | Pause]]


class Stopped(Exception):
    """The stream was stopped; the thread unwinds quietly."""


@dataclass(slots=True)
class FirstFrame:
    """The two threads take turns until the first frame is decoded, each running `threads`
    torch threads (the cores of both stages), so the first audio comes as early as it can."""

    threads: int
    decoded: threading.Event = field(default_factory=threading.Event)

    def wait_decoded(self, stop: threading.Event) -> None:
        while not self.decoded.wait(QUEUE_POLL_S):
            if stop.is_set():
                raise Stopped


def use_threads(n: int) -> None:
    """Sets this thread's torch intra-op threads. torch applies the process-wide count to a
    thread at its first parallel op, which would undo a count set before it; asking for the
    count first gets that done, so the setting below stays this thread's own."""
    torch.get_num_threads()
    torch.set_num_threads(n)


def put(q: queue.Queue[Message], item: Message, stop: threading.Event) -> None:
    """Blocking put that gives up when `stop` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            q.put(item, timeout=QUEUE_POLL_S)
            return
        except queue.Full:
            continue


def _timer(
    clock: WordClock,
    plan: ChunkPlan,
    chunk_start: int,
    on_words: Callable[[list[WordTiming]], None],
) -> Callable[[int], None]:
    """What a chunk starting at sample `chunk_start` does when its speech ends with frame i."""

    def speech_end(i: int) -> None:
        on_words(clock.speech_ended(plan.words, chunk_start, i))

    return speech_end


def run_producer(
    flow_lm: FlowLM,
    voice: VoiceState,
    plans: PlanSource,
    seed: int,
    out: queue.Queue[Message],
    stop: threading.Event,
    n_threads: int,
    first: FirstFrame,
    on_step: Callable[[float], None] | None = None,
    on_words: Callable[[list[WordTiming]], None] | None = None,
    speed: float = 1.0,
) -> None:
    """`on_words`: given each chunk's word timings (when its speech ends: before the frames
    after it are queued); `speed`: the output timeline's, for those timings."""
    use_threads(first.threads)
    generator = torch.Generator()
    generator.manual_seed(seed)
    n_frames = 0
    position = 0  # samples at 24 kHz before the next frame: frames and pauses
    clock = WordClock(speed)
    with torch.no_grad():
        chunk_index = -1
        for plan in plans(stop) if callable(plans) else plans:
            if stop.is_set():
                raise Stopped
            if isinstance(plan, Pause):
                put(out, Silence(plan.samples), stop)
                position += plan.samples
                continue
            chunk_index += 1
            state = prompt_chunk(flow_lm, voice, plan)
            speech_end = None if on_words is None else _timer(clock, plan, position, on_words)
            t0 = time.perf_counter()
            for latent in generate_latents(flow_lm, state, plan, generator, speech_end):
                if on_step is not None:
                    on_step(time.perf_counter() - t0)
                put(out, Latent(latent, chunk_index, n_frames), stop)
                if n_frames == 0:  # the decoder's turn
                    use_threads(n_threads)
                    first.wait_decoded(stop)
                n_frames += 1
                position += SAMPLES_PER_FRAME
                t0 = time.perf_counter()
    put(out, End(n_frames), stop)
