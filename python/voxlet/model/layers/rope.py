"""Rotary position embedding on interleaved pairs (2i, 2i+1) of each head, computed in float32.

Pair i of position p turns by angle p * max_period^(-2i/D). The turns of a block of positions are
computed once as unit complex numbers (`rotation`) and shared by every layer of a transformer;
`rotate` applies them to q and k together as one complex product.
"""

from __future__ import annotations

import functools
import math

import torch


@functools.lru_cache(maxsize=16)
def _frequencies(head_dim: int, max_period: float) -> torch.Tensor:
    half = torch.arange(head_dim // 2, dtype=torch.float32)
    return torch.exp(half * (-math.log(max_period) * 2 / head_dim))  # (D/2,)


def rotation(offset: int, length: int, head_dim: int, max_period: float) -> torch.Tensor:
    """cos + i sin of the angles of positions [offset, offset + length): (length, D/2) complex64."""
    positions = torch.arange(offset, offset + length, dtype=torch.float32)
    angles = positions.view(length, 1) * _frequencies(head_dim, max_period)
    return torch.complex(torch.cos(angles), torch.sin(angles))


def rotate(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """x (B, T, ..., D) float32 with unit-stride pairs -> rotated copy, contiguous; turns from
    `rotation` for the T positions."""
    shape = x.shape
    pairs = torch.view_as_complex(x.unflatten(-1, (shape[-1] // 2, 2)))  # (B, T, ..., D/2)
    turns = turns.view(1, shape[1], *([1] * (x.dim() - 3)), shape[-1] // 2)
    return torch.view_as_real(pairs * turns).view(shape)
