"""Latent generation for one text chunk: token ids + voice -> normalized latents, EOS rule applied.

Runs on the thread that owns the FlowLM state it creates. Each chunk starts from a copy of the
voice prefix with capacity for its tokens and frames, prefills the text, then steps until the
EOS rule or the length limit stops it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from voxlet.constants import FRAME_RATE_HZ, LATENT_DIM, MIN_FRAMES_BEFORE_EOS
from voxlet.errors import VoxletError
from voxlet.model.flow_lm import FlowLM
from voxlet.model.voice import VoiceState

if TYPE_CHECKING:
    from voxlet.text.words import WordMark

log = logging.getLogger(__name__)


def estimate_max_frames(n_tokens: int) -> int:
    """The reference's length limit per chunk: ceil((tokens / 3 + 2) * 12.5) frames."""
    return math.ceil((n_tokens / 3.0 + 2.0) * FRAME_RATE_HZ)


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """Resolved knobs of one chunk (per-call options merged with model defaults)."""

    token_ids: torch.Tensor  # (T,) int64
    max_frames: int
    frames_after_eos: int
    temperature: float
    eos_threshold: float
    lsd_steps: int
    noise_clamp: float | None
    on_no_eos: str
    words: tuple[WordMark, ...] = ()  # the written words it says (word timings)


class NoEosError(VoxletError):
    """A chunk reached its length limit without an end-of-speech frame (on_no_eos='raise')."""


class NonFiniteError(VoxletError, ValueError):
    """The model produced a NaN or infinite latent (bad weights, a bad voice): an error, never
    seconds of silence."""


def make_noise(plan: ChunkPlan, generator: torch.Generator) -> torch.Tensor:
    """Start noise of the flow head: N(0, temperature), optionally truncated; (1, 32)."""
    if plan.temperature == 0:
        return torch.zeros(1, LATENT_DIM)
    std = math.sqrt(plan.temperature)
    if plan.noise_clamp is None:
        return torch.randn(1, LATENT_DIM, generator=generator) * std
    x = torch.empty(1, LATENT_DIM)
    return torch.nn.init.trunc_normal_(
        x, 0.0, std, -plan.noise_clamp, plan.noise_clamp, generator=generator
    )


def prompt_chunk(flow_lm: FlowLM, voice: VoiceState, plan: ChunkPlan):
    """A fresh FlowLM state: voice prefix copied in, then the chunk's text prefilled."""
    n_tokens = int(plan.token_ids.shape[0])
    state = voice.to_flow_lm_state(voice.n_positions + n_tokens + plan.max_frames)
    flow_lm.prompt(flow_lm.embed_tokens(plan.token_ids.view(1, -1)), state)
    return state


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

    def frame(self, i: int, latent: torch.Tensor, eos_logit: torch.Tensor) -> bool:
        """Frame i was made: True if the speech ends with it (its EOS frame, or the last the
        limit allows). A non-finite latent is a NonFiniteError."""
        if not bool(torch.isfinite(latent).all()):
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


def generate_latents(
    flow_lm: FlowLM,
    state,
    plan: ChunkPlan,
    generator: torch.Generator,
    on_speech_end: Callable[[int], None] | None = None,
) -> Iterator[torch.Tensor]:
    """Yields normalized latents (1, 32) from a prompted state until the `ChunkEnd` rule
    stops it. `on_speech_end(i)` is called, before frame i is yielded, once it is known that
    the speech ends with frame i: the EOS frame, or the last frame the limit allows.
    """
    latent: torch.Tensor | None = None
    end = ChunkEnd(plan)
    for i in range(plan.max_frames):
        if end.done(i):
            return
        latent, eos_logit = flow_lm.step(latent, state, make_noise(plan, generator), plan.lsd_steps)
        if end.frame(i, latent, eos_logit) and on_speech_end is not None:
            on_speech_end(i)
        yield latent
    end.finish()
