"""Thread "voxlet-mimi": decodes `Latent`s into 24 kHz PCM and pushes it into the Rust pipeline.

Owns the Mimi decoder state (one for the whole stream, so chunk seams are continuous). One FFI
call per 80 ms frame: `PcmPipeline.push`, which resamples if asked and waits for ring space.
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


def run_consumer(
    mimi: Mimi,
    flow_lm: FlowLM,
    inbox: queue.Queue[Message],
    pipeline: PcmPipeline,
    stop: threading.Event,
    n_threads: int,
    on_frame: Callable[[int, float], None] | None = None,
) -> None:
    torch.set_num_threads(n_threads)
    state = mimi.init_decoder_state()
    with torch.no_grad():
        while True:
            message = get(inbox, stop)
            if isinstance(message, End):
                pipeline.finish()
                return
            assert isinstance(message, Latent)
            t0 = time.perf_counter()
            pcm = mimi.decode(flow_lm.denormalize(message.latent).view(1, 1, -1), state)
            frame = pcm.view(-1).numpy()  # (1920,) view, C-contiguous
            if message.frame_index == 0:
                frame[:FADE_IN_SAMPLES] *= _FADE
            try:
                pipeline.push(frame)
            except AudioError as e:  # cancelled while waiting for room
                if pipeline.is_cancelled:
                    raise Stopped from e
                raise
            if on_frame is not None:
                on_frame(message.frame_index, time.perf_counter() - t0)
