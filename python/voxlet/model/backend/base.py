"""The backend interface: layouts a backend is asked about, the typed weights it is given, the
kernels it returns, and `TorchBackend`, which supports nothing (every layer runs in PyTorch).

Weights are named: a transformer layer's `in_proj` is `LayerParams.in_proj`, never the third
item of a tuple. A linear is handed over as its module (`nn.Linear`, or an int8 linear with a
`.matrix`), so a backend can share int8 matrices instead of quantizing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

log = logging.getLogger("voxlet.model.backend")


@dataclass(frozen=True, slots=True)
class StackLayout:
    """What a transformer stack is, before any weight exists."""

    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    context: int | None  # None: causal over every position (FlowLM); else a window (Mimi)
    layer_scale: bool


@dataclass(frozen=True, slots=True)
class FlowHeadLayout:
    cond_dim: int
    dim: int
    depth: int
    latent: int
    timed: bool  # time embedders (lsd) or none (pointwise, drifting)


@dataclass(frozen=True, slots=True)
class SeanetLayout:
    """Mimi's SEANet decoder: its input width, its first and last kernels, its upsampling."""

    dimension: int
    n_filters: int
    ratios: tuple[int, ...]
    kernel: int
    last_kernel: int


@dataclass(frozen=True, slots=True)
class ConvParams:
    """A causal stride-1 convolution: PyTorch's weight (C_out, C_in, k) and bias."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    dilation: int


@dataclass(frozen=True, slots=True)
class ConvTransposeParams:
    """A transposed convolution of kernel 2 stride: PyTorch's weight (C_in, C_out, 2 s)."""

    weight: torch.Tensor
    bias: torch.Tensor
    stride: int


@dataclass(frozen=True, slots=True)
class ResidualParams:
    """x + conv_1(elu(conv_k(elu(x))))."""

    conv_k: ConvParams
    conv_1: ConvParams


ELU = "elu"
SeanetStage = ConvParams | ConvTransposeParams | ResidualParams | str  # str: ELU


@dataclass(frozen=True, slots=True)
class SeanetParams:
    layout: SeanetLayout
    stages: tuple[SeanetStage, ...]


@dataclass(frozen=True, slots=True)
class NormParams:
    weight: torch.Tensor
    bias: torch.Tensor
    eps: float

    @staticmethod
    def of(norm: nn.LayerNorm) -> NormParams:
        """An affine LayerNorm's weight, bias and epsilon."""
        assert norm.weight is not None and norm.bias is not None
        return NormParams(norm.weight, norm.bias, norm.eps)


@dataclass(frozen=True, slots=True)
class LayerParams:
    norm1: NormParams
    in_proj: nn.Module  # [Q: A | K: G Dh | V: G Dh] rows
    out_proj: nn.Module
    norm2: NormParams
    linear1: nn.Module
    linear2: nn.Module
    layer_scale_1: torch.Tensor | None
    layer_scale_2: torch.Tensor | None


@dataclass(frozen=True, slots=True)
class StackParams:
    layout: StackLayout
    layers: tuple[LayerParams, ...]


@dataclass(frozen=True, slots=True)
class FlowBlockParams:
    norm: NormParams
    mlp_in: nn.Module
    mlp_out: nn.Module
    modulation: nn.Module  # shift, scale, gate stacked


@dataclass(frozen=True, slots=True)
class FlowHeadParams:
    layout: FlowHeadLayout
    cond: nn.Module
    input: nn.Module
    blocks: tuple[FlowBlockParams, ...]
    final_modulation: nn.Module  # shift, scale stacked
    final_linear: nn.Module
    final_eps: float


class StackKernel(Protocol):
    def __call__(self, x: torch.Tensor, caches: list, turns: torch.Tensor) -> torch.Tensor:
        """x (1, T, D) at the caches' offset -> (1, T, D); every cache gets the T positions."""
        ...


class HeadKernel(Protocol):
    def __call__(self, c: torch.Tensor, time: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """c (B, cond), the time embedding (1, dim) or None, x (B, latent) -> (B, latent)."""
        ...


class LinearKernel(Protocol):
    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class SeanetKernel(Protocol):
    def state(self) -> object:
        """A fresh stream's carried state."""
        ...

    def __call__(self, x: torch.Tensor, state: object) -> torch.Tensor:
        """x (1, C, T) -> audio (1, 1, T * hop); advances `state`."""
        ...


class Backend(Protocol):
    name: str

    def supports_stack(self, layout: StackLayout) -> bool: ...

    def supports_flow_head(self, layout: FlowHeadLayout) -> bool: ...

    def supports_linear(self, rows: int, cols: int) -> bool: ...

    def supports_seanet(self, layout: SeanetLayout) -> bool: ...

    def seanet(self, params: SeanetParams) -> SeanetKernel: ...

    def stack(self, params: StackParams) -> StackKernel: ...

    def flow_head(self, params: FlowHeadParams) -> HeadKernel: ...

    def linear(self, module: nn.Module) -> LinearKernel: ...


_logged: set[tuple[str, str, object]] = set()


def supported(backend: Backend, what: str, layout: object, yes: bool) -> bool:
    """`yes`, logging once per backend and layout (at debug level) when it is False."""
    key = (backend.name, what, layout)
    if not yes and backend.name != "torch" and key not in _logged:
        _logged.add(key)
        log.debug("backend %s: %s %s runs in PyTorch", backend.name, what, layout)
    return yes


class TorchBackend:
    """Every layer in PyTorch: the reference path, and the one training uses."""

    name = "torch"

    def supports_stack(self, layout: StackLayout) -> bool:
        return False

    def supports_flow_head(self, layout: FlowHeadLayout) -> bool:
        return False

    def supports_linear(self, rows: int, cols: int) -> bool:
        return False

    def supports_seanet(self, layout: SeanetLayout) -> bool:
        return False

    def seanet(self, params: SeanetParams) -> SeanetKernel:
        raise NotImplementedError("the torch backend has no kernels")

    def stack(self, params: StackParams) -> StackKernel:
        raise NotImplementedError("the torch backend has no kernels")

    def flow_head(self, params: FlowHeadParams) -> HeadKernel:
        raise NotImplementedError("the torch backend has no kernels")

    def linear(self, module: nn.Module) -> LinearKernel:
        raise NotImplementedError("the torch backend has no kernels")


TORCH = TorchBackend()
