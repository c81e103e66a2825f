"""A chunk's plan and its end: what FlowLM is asked to say (`ChunkPlan`: token ids and the
resolved knobs), and the end-of-speech rule that stops it (`ChunkEnd`). Framework-free: both
the PyTorch model and the native runtime generate under these rules.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from voxlet.constants import FRAME_RATE_HZ, MIN_FRAMES_BEFORE_EOS
from voxlet.errors import VoxletError

if TYPE_CHECKING:
    from voxlet.text.words import WordMark

log = logging.getLogger(__name__)


def estimate_max_frames(n_tokens: int) -> int:
    """The reference's length limit per chunk: ceil((tokens / 3 + 2) * 12.5) frames."""
    return math.ceil((n_tokens / 3.0 + 2.0) * FRAME_RATE_HZ)


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """Resolved knobs of one chunk (per-call options merged with model defaults)."""

    token_ids: npt.NDArray[np.int64]  # (T,)
    max_frames: int
    frames_after_eos: int
    temperature: float
    eos_threshold: float
    lsd_steps: int
    noise_clamp: float | None
    on_no_eos: str
    words: tuple[WordMark, ...] = ()  # the written words it says (word timings)

    @property
    def positions(self) -> int:
        """The FlowLM positions the chunk can add after its voice's: its tokens and frames."""
        return int(self.token_ids.shape[0]) + self.max_frames


class NoEosError(VoxletError):
    """A chunk reached its length limit without an end-of-speech frame (on_no_eos='raise')."""


class NonFiniteError(VoxletError, ValueError):
    """The model produced a NaN or infinite latent (bad weights, a bad voice): an error, never
    seconds of silence."""


@dataclass(slots=True)
class ChunkEnd:
    """The end-of-speech rule of one chunk, told its frames one by one: EOS flags before frame
    MIN_FRAMES_BEFORE_EOS are ignored; after the first EOS at frame e, frames up to
    e + frames_after_eos - 1 are made; at most max_frames in all."""

    plan: ChunkPlan
    eos_at: int | None = None

    def done(self, frames: int) -> bool:
        """Whether the chunk ends before its frame number `frames`."""
        plan = self.plan
        after_eos = self.eos_at is not None and frames >= self.eos_at + plan.frames_after_eos
        return after_eos or frames >= plan.max_frames

    def frame(self, i: int, finite: bool, eos_logit: float) -> bool:
        """Frame i was made (`finite`: whether its latent is): True if the speech ends with it
        (its EOS frame, or the last the limit allows). A non-finite latent is a NonFiniteError."""
        if not finite:
            raise NonFiniteError(f"frame {i} of the chunk came out NaN or infinite")
        if self.eos_at is not None:
            return False
        if i >= MIN_FRAMES_BEFORE_EOS and float(eos_logit) > self.plan.eos_threshold:
            self.eos_at = i
            return True
        return i == self.plan.max_frames - 1

    def finish(self) -> None:
        """After the chunk's last frame: `on_no_eos` where it never said EOS."""
        if self.eos_at is not None:
            return
        plan = self.plan
        message = f"maximum generation length ({plan.max_frames} frames) reached without EOS"
        if plan.on_no_eos == "raise":
            raise NoEosError(message)
        if plan.on_no_eos == "warn":
            log.warning(message)
