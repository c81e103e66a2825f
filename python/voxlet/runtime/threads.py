"""What a stream's threads share: how they stop (`Stopped`, polls of `QUEUE_POLL_S`), each
thread's own torch thread count (`use_threads`), and the first-frame relay (`FirstFrame`): the
engine prefills and steps a stream alone with the cores of both stages while the decoder has
nothing to do, then waits while the decoder uses them on that frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch

QUEUE_POLL_S = 0.05


class Stopped(Exception):
    """The stream was stopped; the thread unwinds quietly."""


@dataclass(slots=True)
class FirstFrame:
    """The engine and the decoder take turns until the first frame is decoded, each running
    `threads` torch threads (the cores of both stages), so the first audio comes as early as
    it can. `decoded` is set by the decoder once it has."""

    threads: int
    decoded: threading.Event = field(default_factory=threading.Event)


def use_threads(n: int) -> None:
    """Sets this thread's torch intra-op threads. torch applies the process-wide count to a
    thread at its first parallel op, which would undo a count set before it; asking for the
    count first gets that done, so the setting below stays this thread's own."""
    torch.get_num_threads()
    torch.set_num_threads(n)
