"""voxlet's Rust kernels as a backend: FlowLM's transformer (every step and text prefill), its
flow head (every type), its z projection and Mimi's decoder transformer, one native call each.

`NativeBackend(precision)` is chosen when the network is built. A stack replaces ~25 torch
operations per layer, a flow head ~90, with one call that releases the GIL once
(`voxlet._native.Transformer`, `FlowHead`). Float linears are read in place (`F32Matrix` over
the parameter's memory, which the kernel keeps alive: the model is not held twice) and summed
in float32; int8 ones (`Int8Linear`) share their quantized matrices. Batches of one take these
kernels; other batches, and autograd, keep the PyTorch layers. Float32 stacks run natively only
where the float kernel has its AVX2 + FMA path (elsewhere each fused multiply-add is a library
call, and PyTorch's BLAS is faster); int8 ones everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from voxlet._native import (
    F32Matrix,
    FlowBlockWeights,
    FlowHead,
    Int8Matrix,
    LayerWeights,
    NormWeights,
    kernel_isa,
)
from voxlet._native import Transformer as NativeTransformer
from voxlet.model.backend.base import (
    FlowHeadLayout,
    FlowHeadParams,
    NormParams,
    StackLayout,
    StackParams,
    supported,
)
from voxlet.model.layers.attention import LinearKV, RingKV
from voxlet.model.quantize import check_precision


def _vector(t: torch.Tensor) -> NDArray[np.float32]:
    return t.detach().float().contiguous().numpy()


def _norm(p: NormParams) -> NormWeights:
    return NormWeights(_vector(p.weight), _vector(p.bias), p.eps)


def matrix(module: nn.Module) -> Int8Matrix | F32Matrix:
    """The matrix a native call multiplies by: an int8 linear's own, or a float linear's
    weight read in place."""
    int8 = getattr(module, "matrix", None)
    if isinstance(int8, Int8Matrix):
        return int8
    if isinstance(module, nn.Linear) and module.weight.dtype == torch.float32:
        bias = None if module.bias is None else _vector(module.bias)
        return F32Matrix(module.weight.detach().numpy(), bias)
    raise ValueError(f"native layers need float32 or int8 linears, got {module}")


class NativeStack:
    """A transformer advanced some positions of one sequence in one native call (norms,
    rotation, causal or windowed attention over grouped kv heads, GELU and layer scales
    included), its caches too."""

    def __init__(self, params: StackParams):
        layers = [
            LayerWeights(
                norm1=_norm(p.norm1),
                in_proj=matrix(p.in_proj),
                out_proj=matrix(p.out_proj),
                norm2=_norm(p.norm2),
                linear1=matrix(p.linear1),
                linear2=matrix(p.linear2),
                layer_scale_1=None if p.layer_scale_1 is None else _vector(p.layer_scale_1),
                layer_scale_2=None if p.layer_scale_2 is None else _vector(p.layer_scale_2),
            )
            for p in params.layers
        ]
        layout = params.layout
        self._native = NativeTransformer(
            layers, heads=layout.heads, kv_heads=layout.kv_heads, context=layout.context
        )

    def __call__(self, x: torch.Tensor, caches: list, turns: torch.Tensor) -> torch.Tensor:
        """x (1, T, D) at the caches' offset -> (1, T, D) as a new tensor; every cache gets the
        T positions and advances by T."""
        first = caches[0]
        start, end = first.offset, first.offset + x.shape[1]
        if isinstance(first, LinearKV) and end > first.capacity:
            raise RuntimeError(f"KV cache full: {end} positions > capacity {first.capacity}")
        out = x.detach().float().clone(memory_format=torch.contiguous_format)  # one copy
        self._native.forward(
            out.numpy(),
            [c.k.numpy() for c in caches],
            [c.v.numpy() for c in caches],
            start,
            torch.view_as_real(turns).numpy(),
            torch.get_num_threads(),
        )
        if isinstance(first, RingKV):  # which position each slot now holds
            context = first.pos.shape[0]
            newest = torch.arange(max(start, end - context), end)
            for cache in caches:
                cache.pos[newest % context] = newest
        for cache in caches:
            cache.offset = end
        return out


class NativeHead:
    """The flow head's velocity in one native call (the adaLN MLP's norms, SiLUs and
    modulations included). A timed head's time embedding stays in PyTorch (cached per pair of
    times) and is passed in."""

    def __init__(self, params: FlowHeadParams):
        blocks = [
            FlowBlockWeights(
                norm=_norm(b.norm),
                mlp_in=matrix(b.mlp_in),
                mlp_out=matrix(b.mlp_out),
                modulation=matrix(b.modulation),
            )
            for b in params.blocks
        ]
        self._native = FlowHead(
            matrix(params.cond),
            matrix(params.input),
            blocks,
            matrix(params.final_modulation),
            matrix(params.final_linear),
            params.final_eps,
        )

    def __call__(self, c: torch.Tensor, time: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        c, x = (t.detach().float().contiguous() for t in (c, x))
        t = None if time is None else time.detach().float().contiguous().numpy()
        v = self._native.velocity(c.numpy(), t, x.numpy(), torch.get_num_threads())
        return torch.from_numpy(v)


class NativeLinear:
    """One linear as one native product (FlowLM's z projection)."""

    def __init__(self, module: nn.Module):
        self._matrix = matrix(module)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().contiguous()
        return torch.from_numpy(self._matrix.apply(x.numpy(), torch.get_num_threads()))


class NativeBackend:
    """The Rust kernels, for float32 or int8 weights (`precision`)."""

    def __init__(self, precision: str = "fp32"):
        self.precision = check_precision(precision)
        self.name = f"native-{precision}"

    def _pays(self) -> bool:
        return self.precision == "int8" or kernel_isa() == "avx2"

    def supports_stack(self, layout: StackLayout) -> bool:
        return supported(self, "transformer", layout, self._pays() and layout.head_dim % 2 == 0)

    def supports_flow_head(self, layout: FlowHeadLayout) -> bool:
        return supported(self, "flow head", layout, self._pays())

    def supports_linear(self, rows: int, cols: int) -> bool:
        return supported(self, "linear", (rows, cols), self._pays())

    def stack(self, params: StackParams) -> NativeStack:
        return NativeStack(params)

    def flow_head(self, params: FlowHeadParams) -> NativeHead:
        return NativeHead(params)

    def linear(self, module: nn.Module) -> NativeLinear:
        return NativeLinear(module)
