"""Multi-head self-attention with a fused q/k/v projection and two KV-cache kinds.

`LinearKV` (FlowLM) holds every position since the stream began, preallocated to a capacity.
`RingKV` (Mimi) holds the last `context` positions in a fixed ring, so cost does not grow with
length. Both store (B, H, T, Dh) with RoPE already applied to K. A cache is owned by one thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from voxlet.model.layers.rope import rotate, rotation


@dataclass(slots=True)
class LinearKV:
    """KV cache with `capacity` slots; positions [0, offset) are filled."""

    k: torch.Tensor  # (B, H, capacity, Dh)
    v: torch.Tensor  # (B, H, capacity, Dh)
    offset: int = 0

    @staticmethod
    def empty(batch: int, heads: int, head_dim: int, capacity: int) -> LinearKV:
        k = torch.full((batch, heads, capacity, head_dim), float("nan"))
        return LinearKV(k, torch.full_like(k, float("nan")), 0)

    @property
    def capacity(self) -> int:
        return self.k.shape[2]


@dataclass(slots=True)
class RingKV:
    """The last `capacity` positions; slot of position p is p % capacity; -1 marks empty."""

    k: torch.Tensor  # (B, H, capacity, Dh)
    v: torch.Tensor  # (B, H, capacity, Dh)
    pos: torch.Tensor  # (capacity,) int64, absolute position held by each slot
    offset: int = 0

    @staticmethod
    def empty(batch: int, heads: int, head_dim: int, capacity: int) -> RingKV:
        k = torch.zeros(batch, heads, capacity, head_dim)
        pos = torch.full((capacity,), -1, dtype=torch.long)
        return RingKV(k, torch.zeros_like(k), pos, 0)


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, max_period: float, context: int | None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.max_period = max_period
        self.context = context  # None: unbounded causal (FlowLM); else window (Mimi)
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def init_state(self, batch: int, capacity: int) -> LinearKV | RingKV:
        if self.context is None:
            return LinearKV.empty(batch, self.num_heads, self.head_dim, capacity)
        return RingKV.empty(batch, self.num_heads, self.head_dim, self.context)

    def _qkv(self, x: torch.Tensor, turns: torch.Tensor):
        b, t, _ = x.shape
        qkv = self.in_proj(x).view(b, t, 3, self.num_heads, self.head_dim)  # (B, T, 3, H, Dh)
        qk = rotate(qkv[:, :, :2], turns)  # (B, T, 2, H, Dh), q and k in one product
        q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # (B, H, T, Dh)
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def forward(
        self, x: torch.Tensor, state: LinearKV | RingKV, turns: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, T, D) at positions [state.offset, state.offset + T); advances the state. A
        transformer passes the positions' RoPE `turns` (`rope.rotation`), shared by its layers."""
        b, t, d = x.shape
        if turns is None:
            turns = rotation(state.offset, t, self.head_dim, self.max_period)
        q, k, v = self._qkv(x, turns)
        if isinstance(state, LinearKV):
            out = self._attend_linear(q, k, v, state)
        else:
            positions = torch.arange(state.offset, state.offset + t)
            out = self._attend_ring(q, k, v, positions, state)
        state.offset += t
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))

    def _attend_linear(self, q, k, v, state: LinearKV) -> torch.Tensor:
        start, t = state.offset, q.shape[2]
        end = start + t
        if end > state.capacity:
            raise RuntimeError(f"KV cache full: {end} positions > capacity {state.capacity}")
        state.k[:, :, start:end] = k
        state.v[:, :, start:end] = v
        keys, values = state.k[:, :, :end], state.v[:, :, :end]
        if t == 1:
            return F.scaled_dot_product_attention(q, keys, values)
        q_pos = torch.arange(start, end).view(t, 1)
        mask = torch.arange(end).view(1, end) <= q_pos  # (T, end) causal
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

    def _attend_ring(self, q, k, v, positions, state: RingKV) -> torch.Tensor:
        assert self.context is not None
        keys = torch.cat([state.k, k], dim=2)
        values = torch.cat([state.v, v], dim=2)
        k_pos = torch.cat([state.pos, positions])  # (capacity + T,)
        delta = positions.view(-1, 1) - k_pos.view(1, -1)  # (T, capacity + T)
        mask = (k_pos.view(1, -1) >= 0) & (delta >= 0) & (delta < self.context)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        keep = min(q.shape[2], self.context)  # only the newest `context` positions survive
        slots = positions[-keep:] % self.context
        state.k[:, :, slots] = k[:, :, -keep:]
        state.v[:, :, slots] = v[:, :, -keep:]
        state.pos[slots] = positions[-keep:]
        return out
