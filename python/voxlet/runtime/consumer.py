"""Thread "voxlet-mimi": decodes `Latent`s into 24 kHz PCM and pushes it into the Rust pipeline.

Owns the Mimi decoder state (one for the whole stream, so chunk seams are continuous). Latents are
decoded in groups of 1, 1, 2, 4, ... up to `max_batch` (bigger matrix products, same audio to float
rounding). The grouping depends only on how many frames came before, never on thread timing, so
a stream's audio is bit-repeatable; the small first groups keep the first frames early. One FFI
call per group: `PcmPipeline.push`, which resamples if asked and waits for ring space. A `Silence`
ends the group before it and goes into the pipeline as zeros (the decoder state runs on).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voxlet.audio import AudioError, PcmPipeline
from voxlet.constants import FADE_IN_SAMPLES, SAMPLE_RATE_HZ
from voxlet.runtime.messages import End, Latent, Message, Silence
from voxlet.runtime.model import SpeechModel
from voxlet.runtime.threads import QUEUE_POLL_S, FirstFrame, Stopped

_FADE = np.linspace(0, 1, FADE_IN_SAMPLES, dtype=np.float32)


def get(q: queue.Queue[Message], stop: threading.Event) -> Message:
    """Blocking get that gives up when `stop` is set."""
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return q.get(timeout=QUEUE_POLL_S)
        except queue.Empty:
            continue


def group_size(decoded: int, max_batch: int) -> int:
    """Frames in the next decode after `decoded` frames: 1, 1, 2, 4, 8, ... capped at max_batch."""
    if decoded < 2:
        return 1
    return min(max_batch, 1 << (decoded.bit_length() - 1))


def _take_group(
    inbox: queue.Queue[Message], stop: threading.Event, size: int
) -> tuple[list[Latent], Silence | None, bool]:
    """Waits for `size` latents, or fewer if a pause or the end comes first; returns them, the
    pause that cut the group short, and True once the stream has ended."""
    group: list[Latent] = []
    while len(group) < size:
        message = get(inbox, stop)
        if isinstance(message, End):
            return group, None, True
        if isinstance(message, Silence):
            return group, message, False
        group.append(message)
    return group, None, False


def _push(pipeline: PcmPipeline, audio: np.ndarray) -> None:
    try:
        pipeline.push(audio)
    except AudioError as e:  # cancelled while waiting for room
        if pipeline.is_cancelled:
            raise Stopped from e
        raise


def _push_silence(pipeline: PcmPipeline, samples: int) -> None:
    """Zeros, a second at a time (a long pause is never one big buffer)."""
    block = np.zeros(min(samples, SAMPLE_RATE_HZ), np.float32)
    while samples > 0:
        n = min(samples, len(block))
        _push(pipeline, block[:n])
        samples -= n


def run_consumer(
    model: SpeechModel,
    inbox: queue.Queue[Message],
    pipeline: PcmPipeline,
    stop: threading.Event,
    n_threads: int,
    first: FirstFrame,
    on_frame: Callable[[int, float], None] | None = None,
    max_batch: int = 4,
) -> None:
    model.use_threads(first.threads)
    state = model.decoder_state()
    decoded = 0
    with model.inference():
        ended = False
        while not ended:
            batch, silence, ended = _take_group(inbox, stop, group_size(decoded, max_batch))
            decoded += len(batch)
            if batch:
                _decode(model, batch, state, pipeline, first, n_threads, on_frame)
            if silence is not None:
                _push_silence(pipeline, silence.samples)
        pipeline.finish()


def _decode(
    model: SpeechModel,
    batch: list[Latent],
    state: Any,
    pipeline: PcmPipeline,
    first: FirstFrame,
    n_threads: int,
    on_frame: Callable[[int, float], None] | None,
) -> None:
    t0 = time.perf_counter()
    audio = model.decode([m.latent for m in batch], state)  # (n * 1920,)
    if not first.decoded.is_set():  # the relay is over: back to this stage's share
        model.use_threads(n_threads)
        first.decoded.set()
    if batch[0].frame_index == 0:
        audio[:FADE_IN_SAMPLES] *= _FADE
    _push(pipeline, audio)
    if on_frame is not None:
        per_frame = (time.perf_counter() - t0) / len(batch)
        for m in batch:
            on_frame(m.frame_index, per_frame)
