"""voxlet's Rust kernels as a backend: FlowLM's transformer (every step and text prefill), its
flow head (every type), its z projection, Mimi's decoder transformer and (for the narrow decoders
of the small layouts) its SEANet decoder, one native call each.

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
    ConvTransposeWeights,
    ConvWeights,
    F32Matrix,
    FlowBlockWeights,
    FlowHead,
    Int8Matrix,
    LayerWeights,
    NormWeights,
    ResidualWeights,
    SeanetDecoder,
    SeanetState,
    kernel_isa,
)
from voxlet._native import Transformer as NativeTransformer
from voxlet.model.backend.base import (
    ELU,
    ConvParams,
    ConvTransposeParams,
    FlowHeadLayout,
    FlowHeadParams,
    NormParams,
    ResidualParams,
    SeanetLayout,
    SeanetParams,
    StackLayout,
    StackParams,
    supported,
)
from voxlet.model.layers.attention import LinearKV, RingKV
from voxlet.options import check_precision


def _vector(t: torch.Tensor) -> NDArray[np.float32]:
    return t.detach().float().contiguous().numpy()


def _norm(p: NormParams) -> NormWeights:
    return NormWeights(_vector(p.weight), _vector(p.bias), p.eps)


def matrix(module: nn.Module, input_major: bool = False) -> Int8Matrix | F32Matrix:
    """The matrix a native call multiplies by: an int8 linear's own, or a float linear's
    weight, read in place or (`input_major`, for narrow layers) copied input by input."""
    int8 = getattr(module, "matrix", None)
    if isinstance(int8, Int8Matrix):
        return int8
    if isinstance(module, nn.Linear) and module.weight.dtype == torch.float32:
        bias = None if module.bias is None else _vector(module.bias)
        return F32Matrix(module.weight.detach().numpy(), bias, input_major)
    raise ValueError(f"native layers need float32 or int8 linears, got {module}")


# Layers up to this wide (the small layouts' Mimi decoders, 128, and english_2m's FlowLM, 112)
# multiply by input-major copies of their float weights, summed one output per lane: with rows
# this short the row-major kernel spends as long combining partial sums as summing. Wider ones
# (english: 1024 and 512) read the model's weights in place, so the model is not held twice.
_NARROW = 256


class NativeStack:
    """A transformer advanced some positions of one sequence in one native call (norms,
    rotation, causal or windowed attention over grouped kv heads, GELU and layer scales
    included), its caches too."""

    def __init__(self, params: StackParams):
        narrow = params.layout.d_model <= _NARROW
        layers = [
            LayerWeights(
                norm1=_norm(p.norm1),
                in_proj=matrix(p.in_proj, narrow),
                out_proj=matrix(p.out_proj, narrow),
                norm2=_norm(p.norm2),
                linear1=matrix(p.linear1, narrow),
                linear2=matrix(p.linear2, narrow),
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

    def step_rows(self, x: torch.Tensor, caches: list[list], turns: torch.Tensor) -> torch.Tensor:
        """One position of each of B sequences together: x (B, D), sequence b at the offset of
        its caches `caches[b]` (one per layer, unbounded ones) with rotation `turns[b]` ((B,
        head_dim / 2) complex) -> (B, D) as a new tensor, each row the bits a call with that
        sequence alone gives; every cache advances by one."""
        for b, own in enumerate(caches):
            first = own[0]
            if not isinstance(first, LinearKV):
                raise TypeError("step_rows steps unbounded (FlowLM) caches only")
            if first.offset >= first.capacity:
                raise RuntimeError(
                    f"KV cache of sequence {b} full: {first.offset + 1} positions > capacity "
                    f"{first.capacity}"
                )
        out = x.detach().float().contiguous().clone()
        self._native.forward_rows(
            out.numpy(),
            [[c.k.numpy() for c in own] for own in caches],
            [[c.v.numpy() for c in own] for own in caches],
            [own[0].offset for own in caches],
            torch.view_as_real(turns).contiguous().numpy(),
            torch.get_num_threads(),
        )
        for own in caches:
            for cache in own:
                cache.offset += 1
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


def _conv(p: ConvParams) -> ConvWeights:
    bias = None if p.bias is None else _vector(p.bias)
    return ConvWeights(p.weight.detach().float().contiguous().numpy(), bias, p.dilation)


class NativeSeanet:
    """Mimi's SEANet decoder in one native call per decode: every convolution, transposed
    convolution, ELU and residual block, over its own (tap-major) copies of the weights."""

    def __init__(self, params: SeanetParams):
        stages: list[ConvWeights | ConvTransposeWeights | ResidualWeights | str] = []
        for stage in params.stages:
            if isinstance(stage, ConvParams):
                stages.append(_conv(stage))
            elif isinstance(stage, ConvTransposeParams):
                w = stage.weight.detach().float().contiguous().numpy()
                stages.append(ConvTransposeWeights(w, _vector(stage.bias), stage.stride))
            elif isinstance(stage, ResidualParams):
                stages.append(ResidualWeights(_conv(stage.conv_k), _conv(stage.conv_1)))
            else:
                assert stage == ELU, stage
                stages.append(ELU)
        self._native = SeanetDecoder(stages)

    def state(self) -> SeanetState:
        return SeanetState(self._native)

    def __call__(self, x: torch.Tensor, state: object) -> torch.Tensor:
        """x (1, C, T) -> (1, 1, T * hop)."""
        assert isinstance(state, SeanetState)
        rows = x[0].detach().float().T.contiguous()  # (T, C): a view where x came transposed
        audio = self._native.forward(rows.numpy(), state)
        return torch.from_numpy(audio).view(1, 1, -1)


# SEANet decoders up to _NARROW wide run natively: the small layouts' (128), whose many small
# PyTorch operations cost more than their arithmetic; wider ones (english: 512) stay in PyTorch,
# whose convolutions are faster there and whose float weights the native one would copy.


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

    def supports_seanet(self, layout: SeanetLayout) -> bool:
        narrow = layout.dimension <= _NARROW
        return supported(self, "SEANet decoder", layout, self._pays() and narrow)

    def seanet(self, params: SeanetParams) -> NativeSeanet:
        return NativeSeanet(params)

    def stack(self, params: StackParams) -> NativeStack:
        return NativeStack(params)

    def flow_head(self, params: FlowHeadParams) -> NativeHead:
        return NativeHead(params)

    def linear(self, module: nn.Module) -> NativeLinear:
        return NativeLinear(module)
