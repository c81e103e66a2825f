"""Pre-norm causal transformer: x + ls1*Attn(LN1(x)), then x + ls2*FFN(LN2(x)); tanh GELU.

LayerScale (`layer_scale_{1,2}.scale`) exists only in Mimi's transformers. No linear has a bias.
A transformer built with a backend that supports its layout (`voxlet.model.backend`) advances,
once `prepare()` has handed the backend its weights, the whole stack by some positions of one
sequence in one kernel call whenever the batch is one.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from voxlet.model.backend import (
    TORCH,
    Backend,
    LayerParams,
    NormParams,
    StackKernel,
    StackLayout,
    StackParams,
)
from voxlet.model.layers.attention import LinearKV, RingKV, SelfAttention
from voxlet.model.layers.native import gelu_tanh_inplace
from voxlet.model.layers.rope import rotation


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _scale(module: nn.Module) -> torch.Tensor | None:
    return module.scale if isinstance(module, LayerScale) else None


class TransformerLayer(nn.Module):
    def __init__(
        self,
        d_model,
        num_heads,
        ffn_dim,
        max_period,
        context,
        layer_scale: bool,
        attn_dim: int | None = None,
        kv_heads: int | None = None,
    ):
        super().__init__()
        self.self_attn = SelfAttention(
            d_model, num_heads, max_period, context, attn_dim=attn_dim, kv_heads=kv_heads
        )
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

    def params(self) -> LayerParams:
        attn = self.self_attn
        return LayerParams(
            norm1=NormParams.of(self.norm1),
            in_proj=attn.in_proj,
            out_proj=attn.out_proj,
            norm2=NormParams.of(self.norm2),
            linear1=self.linear1,
            linear2=self.linear2,
            layer_scale_1=_scale(self.layer_scale_1),
            layer_scale_2=_scale(self.layer_scale_2),
        )


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
        *,
        attn_dim: int | None = None,
        kv_heads: int | None = None,
        backend: Backend = TORCH,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(
                d_model,
                num_heads,
                ffn_dim,
                max_period,
                context,
                layer_scale,
                attn_dim=attn_dim,
                kv_heads=kv_heads,
            )
            for _ in range(num_layers)
        )
        attn = self.attention(0)
        self.layout = StackLayout(
            d_model, num_heads, attn.kv_heads, attn.head_dim, ffn_dim, context, layer_scale
        )
        self._backend = backend if backend.supports_stack(self.layout) else TORCH
        self._kernel: StackKernel | None = None

    def params(self) -> StackParams:
        """The weights, by name, as a backend takes them."""
        layers = (cast(TransformerLayer, layer).params() for layer in self.layers)
        return StackParams(self.layout, tuple(layers))

    def prepare(self) -> None:
        """Hands the current weights to the backend chosen at construction (call it again
        after changing them); a no-op where the layout runs in PyTorch."""
        self._kernel = self._backend.stack(self.params()) if self._backend is not TORCH else None

    @property
    def kernel(self) -> StackKernel | None:
        """The backend's kernel, once prepared; None where the stack runs in PyTorch."""
        return self._kernel

    def attention(self, i: int) -> SelfAttention:
        return cast(TransformerLayer, self.layers[i]).self_attn

    def init_state(self, batch: int, capacity: int = 0) -> list[LinearKV | RingKV]:
        return [self.attention(i).init_state(batch, capacity) for i in range(len(self.layers))]

    def forward(self, x: torch.Tensor, state: list) -> torch.Tensor:
        attn = self.attention(0)  # every layer is at the same positions: one set of RoPE turns
        turns = rotation(state[0].offset, x.shape[1], attn.head_dim, attn.max_period)
        if self._kernel is not None and x.shape[0] == 1:
            return self._kernel(x, state, turns)
        for layer, cache in zip(self.layers, state, strict=True):
            x = layer(x, cache, turns)
        return x
