"""Pre-norm causal transformer: x + ls1*Attn(LN1(x)), then x + ls2*FFN(LN2(x)); tanh GELU.

LayerScale (`layer_scale_{1,2}.scale`) exists only in Mimi's transformers. No linear has a bias.
`voxlet.model.fused` may set `.native_stack` on a transformer: a native call that advances the
whole stack by some positions of one sequence, used whenever the batch is one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from voxlet.model.layers.attention import LinearKV, RingKV, SelfAttention
from voxlet.model.layers.native import gelu_tanh_inplace
from voxlet.model.layers.rope import rotation

# x (1, T, D), the layers' caches, the positions' RoPE turns -> (1, T, D); caches advanced
NativeStack = Callable[[torch.Tensor, list, torch.Tensor], torch.Tensor]


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class TransformerLayer(nn.Module):
    def __init__(self, d_model, num_heads, ffn_dim, max_period, context, layer_scale: bool):
        super().__init__()
        self.self_attn = SelfAttention(d_model, num_heads, max_period, context)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.linear1 = nn.Linear(d_model, ffn_dim, bias=False)
        self.linear2 = nn.Linear(ffn_dim, d_model, bias=False)
        self.layer_scale_1: nn.Module = LayerScale(d_model) if layer_scale else nn.Identity()
        self.layer_scale_2: nn.Module = LayerScale(d_model) if layer_scale else nn.Identity()

    def forward(
        self, x: torch.Tensor, state: LinearKV | RingKV, turns: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.layer_scale_1(self.self_attn(self.norm1(x), state, turns))
        h = gelu_tanh_inplace(self.linear1(self.norm2(x)))
        return x + self.layer_scale_2(self.linear2(h))


class Transformer(nn.Module):
    """A stack of layers over (B, T, D); one KV cache per layer in the state list."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_layers: int,
        ffn_dim: int,
        max_period: float,
        context: int | None = None,
        layer_scale: bool = False,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(d_model, num_heads, ffn_dim, max_period, context, layer_scale)
            for _ in range(num_layers)
        )
        self.native_stack: NativeStack | None = None

    def attention(self, i: int) -> SelfAttention:
        return cast(TransformerLayer, self.layers[i]).self_attn

    def init_state(self, batch: int, capacity: int = 0) -> list[LinearKV | RingKV]:
        return [self.attention(i).init_state(batch, capacity) for i in range(len(self.layers))]

    def forward(self, x: torch.Tensor, state: list) -> torch.Tensor:
        attn = self.attention(0)  # every layer is at the same positions: one set of RoPE turns
        turns = rotation(state[0].offset, x.shape[1], attn.head_dim, attn.max_period)
        if self.native_stack is not None and x.shape[0] == 1:
            return self.native_stack(x, state, turns)
        for layer, cache in zip(self.layers, state, strict=True):
            x = layer(x, cache, turns)
        return x
