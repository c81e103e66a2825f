"""Thread "voxlet-mimi": decodes `Latent`s into 24 kHz PCM and pushes it into the Rust pipeline.

Owns the Mimi decoder state (one for the whole stream, so chunk seams are continuous). Latents are
decoded in groups of 1, 1, 2, 4, ... up to `max_batch` (bigger matrix products, same audio to float
rounding). The grouping depends only on how many frames came before, never on thread timing, so
a stream's audio is bit-repeatable; the small first groups keep the first frames early. One FFI
call per group: `PcmPipeline.push`, which resamples if asked and waits for ring space.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from voxlet.audio import AudioError, PcmPipeline
from voxlet.constants import FADE_IN_SAMPLES
from voxlet.model.flow_lm import FlowLM
from voxlet.model.mimi import Mimi
from voxlet.runtime.messages import End, Latent, Message
from voxlet.runtime.producer import QUEUE_POLL_S, FirstFrame, Stopped, use_threads

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
) -> tuple[list[Latent], bool]:
    """Waits for `size` latents, or fewer if the stream ends first; True once it has ended."""
    group: list[Latent] = []
    while len(group) < size:
        message = get(inbox, stop)
        if isinstance(message, End):
            return group, True
        group.append(message)
    return group, False


def run_consumer(
    mimi: Mimi,
    flow_lm: FlowLM,
    inbox: queue.Queue[Message],
    pipeline: PcmPipeline,
    stop: threading.Event,
    n_threads: int,
    first: FirstFrame,
    on_frame: Callable[[int, float], None] | None = None,
    max_batch: int = 4,
) -> None:
    use_threads(first.threads)
    state = mimi.init_decoder_state()
    decoded = 0
    with torch.no_grad():
        ended = False
        while not ended:
            batch, ended = _take_group(inbox, stop, group_size(decoded, max_batch))
            decoded += len(batch)
            if not batch:
                continue
            t0 = time.perf_counter()
            latents = torch.cat([m.latent for m in batch]).unsqueeze(0)  # (1, n, 32)
            pcm = mimi.decode(flow_lm.denormalize(latents), state)
            if not first.decoded.is_set():  # the relay is over: back to this stage's share
                use_threads(n_threads)
                first.decoded.set()
            audio = pcm.view(-1).numpy()  # (n * 1920,) view, C-contiguous
            if batch[0].frame_index == 0:
                audio[:FADE_IN_SAMPLES] *= _FADE
            try:
                pipeline.push(audio)
            except AudioError as e:  # cancelled while waiting for room
                if pipeline.is_cancelled:
                    raise Stopped from e
                raise
            if on_frame is not None:
                per_frame = (time.perf_counter() - t0) / len(batch)
                for m in batch:
                    on_frame(m.frame_index, per_frame)
        pipeline.finish()
