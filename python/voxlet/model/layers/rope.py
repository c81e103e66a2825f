"""Rotary position embedding on interleaved pairs (2i, 2i+1) of each head, computed in float32."""

from __future__ import annotations

import functools
import math

import torch


@functools.lru_cache(maxsize=16)
def _frequencies(head_dim: int, max_period: float) -> torch.Tensor:
    half = torch.arange(head_dim // 2, dtype=torch.float32)
    return torch.exp(half * (-math.log(max_period) * 2 / head_dim))  # (D/2,)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, max_period: float) -> torch.Tensor:
    """Rotates x (B, T, H, D) by angle pos * max_period^(-2i/D) for pair i; positions (T,)."""
    b, t, h, d = x.shape
    freqs = _frequencies(d, max_period)
    angles = positions.to(torch.float32).view(t, 1, 1) * freqs  # (T, 1, D/2)
    cos, sin = torch.cos(angles), torch.sin(angles)
    pairs = x.float().view(b, t, h, d // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    out = torch.stack([re * cos - im * sin, re * sin + im * cos], dim=-1)
    return out.view(b, t, h, d).to(x.dtype)
