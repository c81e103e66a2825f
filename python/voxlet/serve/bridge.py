"""A `Stream` read from the event loop: each blocking read runs on a worker thread (at most one
per session at a time), and stopping it is shielded from cancellation, so a client that goes
away stops its session within a frame and nothing keeps generating for nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt

from voxlet.runtime.stream import Stream
from voxlet.runtime.word_clock import WordTiming

Item = npt.NDArray[np.float32] | WordTiming
_DONE = object()


def _next(items: Iterator[Item]) -> object:
    return next(items, _DONE)


async def read(stream: Stream, limiter: anyio.CapacityLimiter) -> AsyncIterator[Item]:
    """The stream's frames and word timings; the stream is stopped however this ends."""
    items = stream.items()
    try:
        while True:
            item = await anyio.to_thread.run_sync(_next, items, limiter=limiter)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        await stop(stream, limiter)


async def stop(stream: Stream, limiter: anyio.CapacityLimiter) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(stream.stop, limiter=limiter)
