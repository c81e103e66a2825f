"""What a stream's stages share: how they stop (`Stopped`, polls of `QUEUE_POLL_S`) and the
first-frame relay (`FirstFrame`): the engine prefills and steps a stream alone with the cores
of both stages while the decoder has nothing to do, then waits while the decoder uses them on
that frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

QUEUE_POLL_S = 0.05


class Stopped(Exception):
    """The stream was stopped; the thread unwinds quietly."""


@dataclass(slots=True)
class FirstFrame:
    """The engine and the decoder take turns until the first frame is decoded, each running
    `threads` compute threads (the cores of both stages), so the first audio comes as early as
    it can. `decoded` is set by the decoder once it has."""

    threads: int
    decoded: threading.Event = field(default_factory=threading.Event)
