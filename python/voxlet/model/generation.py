"""A chunk's start on the PyTorch model: its FlowLM state (a copy of the voice prefix with room
for its tokens and frames, the text prefilled) and the flow head's start noise per frame.
"""

from __future__ import annotations

import math

import torch

from voxlet.constants import LATENT_DIM
from voxlet.model.flow_lm import FlowLM
from voxlet.model.voice import VoiceState
from voxlet.plan import ChunkPlan


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
    state = voice.to_flow_lm_state(voice.n_positions + plan.positions)
    flow_lm.prompt(flow_lm.embed_tokens(torch.from_numpy(plan.token_ids).view(1, -1)), state)
    return state
