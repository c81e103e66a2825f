"""Thread "voxlet-mimi": decodes `Latent`s into 24 kHz PCM and pushes it into the Rust pipeline.

Owns the Mimi decoder state (one for the whole stream, so chunk seams are continuous). When
latents queue up, up to `max_batch` are decoded in one call (bigger matrix products, same audio
to float rounding); a lone latent, such as the first, is decoded at once. One FFI call per
decoded batch: `PcmPipeline.push`, which resamples if asked and waits for ring space.
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
from voxlet.runtime.producer import QUEUE_POLL_S, Stopped

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


def _take_batch(
    inbox: queue.Queue[Message], stop: threading.Event, max_batch: int
) -> tuple[list[Latent], bool]:
    """Waits for one message, then takes whatever else is queued, up to `max_batch` latents."""
    batch: list[Latent] = []
    message = get(inbox, stop)
    while True:
        if isinstance(message, End):
            return batch, True
        batch.append(message)
        if len(batch) == max_batch:
            return batch, False
        try:
            message = inbox.get_nowait()
        except queue.Empty:
            return batch, False


def run_consumer(
    mimi: Mimi,
    flow_lm: FlowLM,
    inbox: queue.Queue[Message],
    pipeline: PcmPipeline,
    stop: threading.Event,
    n_threads: int,
    on_frame: Callable[[int, float], None] | None = None,
    max_batch: int = 4,
) -> None:
    torch.set_num_threads(n_threads)
    state = mimi.init_decoder_state()
    with torch.no_grad():
        ended = False
        while not ended:
            batch, ended = _take_batch(inbox, stop, max_batch)
            if not batch:
                continue
            t0 = time.perf_counter()
            latents = torch.cat([m.latent for m in batch]).unsqueeze(0)  # (1, n, 32)
            pcm = mimi.decode(flow_lm.denormalize(latents), state)
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
