"""Multi-head self-attention with a fused q/k/v projection, grouped-query heads and two
KV-cache kinds.

With H query heads of width Dh = A / H (A = `attn_dim`, d_model unless given) and G key/value
heads (`kv_heads`, H unless given), `in_proj` writes [Q: A | K: G Dh | V: G Dh] per position and
query head h reads kv head h // (H / G) (contiguous groups). `out_proj` maps A back to d_model.
`LinearKV` (FlowLM) holds every position since the stream began, preallocated to a capacity.
`RingKV` (Mimi) holds the last `context` positions in a fixed ring, so cost does not grow with
length. Both store the G kv heads, (B, G, T, Dh), with RoPE already applied to K. A cache is
owned by one thread.
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
    def __init__(
        self,
        d_model: int,
        num_heads: int,
        max_period: float,
        context: int | None,
        attn_dim: int | None = None,
        kv_heads: int | None = None,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.attn_dim = attn_dim or d_model
        self.kv_heads = kv_heads or num_heads
        self.head_dim = self.attn_dim // num_heads
        self.max_period = max_period
        self.context = context  # None: unbounded causal (FlowLM); else window (Mimi)
        kv_width = self.kv_heads * self.head_dim
        self.in_proj = nn.Linear(d_model, self.attn_dim + 2 * kv_width, bias=False)
        self.out_proj = nn.Linear(self.attn_dim, d_model, bias=False)

    def init_state(self, batch: int, capacity: int) -> LinearKV | RingKV:
        if self.context is None:
            return LinearKV.empty(batch, self.kv_heads, self.head_dim, capacity)
        return RingKV.empty(batch, self.kv_heads, self.head_dim, self.context)

    def _qkv(self, x: torch.Tensor, turns: torch.Tensor):
        b, t, _ = x.shape
        h, g, dh = self.num_heads, self.kv_heads, self.head_dim
        qkv = self.in_proj(x)
        if g == h:  # q and k rotated in one product
            qkv = qkv.view(b, t, 3, h, dh)  # (B, T, 3, H, Dh)
            qk = rotate(qkv[:, :, :2], turns)
            q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # (B, H, T, Dh)
            return q, k, qkv[:, :, 2].transpose(1, 2)
        q, k, v = qkv.split([h * dh, g * dh, g * dh], dim=-1)
        qk = rotate(torch.cat([q, k], dim=-1).view(b, t, h + g, dh), turns)
        q, k = qk[:, :, :h].transpose(1, 2), qk[:, :, h:].transpose(1, 2)
        return q, k, v.reshape(b, t, g, dh).transpose(1, 2)  # (B, H|G, T, Dh)

    def _expand(self, kv: torch.Tensor) -> torch.Tensor:
        """(B, G, T, Dh) -> (B, H, T, Dh): kv head g serves query heads g H/G .. (g+1) H/G - 1."""
        group = self.num_heads // self.kv_heads
        return kv if group == 1 else kv.repeat_interleave(group, dim=1)

    def forward(
        self, x: torch.Tensor, state: LinearKV | RingKV, turns: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, T, D) at positions [state.offset, state.offset + T); advances the state. A
        transformer passes the positions' RoPE `turns` (`rope.rotation`), shared by its layers."""
        b, t, _ = x.shape
        if turns is None:
            turns = rotation(state.offset, t, self.head_dim, self.max_period)
        q, k, v = self._qkv(x, turns)
        if isinstance(state, LinearKV):
            out = self._attend_linear(q, k, v, state)
        else:
            positions = torch.arange(state.offset, state.offset + t)
            out = self._attend_ring(q, k, v, positions, state)
        state.offset += t
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.attn_dim))

    def _attend_linear(self, q, k, v, state: LinearKV) -> torch.Tensor:
        start, t = state.offset, q.shape[2]
        end = start + t
        if end > state.capacity:
            raise RuntimeError(f"KV cache full: {end} positions > capacity {state.capacity}")
        state.k[:, :, start:end] = k
        state.v[:, :, start:end] = v
        keys, values = self._expand(state.k[:, :, :end]), self._expand(state.v[:, :, :end])
        if t == 1:
            return F.scaled_dot_product_attention(q, keys, values)
        q_pos = torch.arange(start, end).view(t, 1)
        mask = torch.arange(end).view(1, end) <= q_pos  # (T, end) causal
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)

    def _attend_ring(self, q, k, v, positions, state: RingKV) -> torch.Tensor:
        assert self.context is not None
        keys = self._expand(torch.cat([state.k, k], dim=2))
        values = self._expand(torch.cat([state.v, v], dim=2))
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
