"""Whole stacks in one native call each: FlowLM's transformer (every step and text prefill), its
flow head, and Mimi's decoder transformer, over the layers' own matrices, int8 or float32.

`FusedStack` and `FusedHead` replace ~25 torch operations per transformer layer and ~90 per
flow head with one call that releases the GIL once (`voxlet._audio.Transformer`, `FlowHead`);
`fuse` sets them on a network (`Transformer.native_stack`, `FlowNet.native_velocity`). Float
linears are read in place (`F32Matrix` over the parameter's memory: the model is not held
twice) and summed in float32; int8 ones (`Int8Linear`) share their quantized matrices. Batches
of one take the native path; other batches, and autograd, keep the PyTorch layers.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from voxlet._audio import F32Matrix, FlowHead, Int8Matrix, kernel_isa
from voxlet._audio import Transformer as NativeTransformer
from voxlet.model.layers.attention import LinearKV, RingKV
from voxlet.model.layers.flow_net import FlowNet, ResBlock
from voxlet.model.layers.transformer import LayerScale, Transformer, TransformerLayer
from voxlet.model.network import PocketTTS


def _vector(t: torch.Tensor) -> NDArray[np.float32]:
    return t.detach().float().contiguous().numpy()


def _scale(module: nn.Module) -> NDArray[np.float32] | None:
    return _vector(module.scale) if isinstance(module, LayerScale) else None


def _int8_matrix(module: nn.Module) -> Int8Matrix | None:
    """An int8 linear's (`Int8Linear`) matrix; None for any other module."""
    matrix = getattr(module, "matrix", None)
    return matrix if isinstance(matrix, Int8Matrix) else None


def _matrix(module: nn.Module) -> Int8Matrix | F32Matrix:
    """The matrix a native call multiplies by: an int8 linear's own, or a float linear's
    weight read in place."""
    int8 = _int8_matrix(module)
    if int8 is not None:
        return int8
    if isinstance(module, nn.Linear) and module.weight.dtype == torch.float32:
        bias = None if module.bias is None else _vector(module.bias)
        return F32Matrix(module.weight.detach().numpy(), bias)
    raise ValueError(f"native layers need float32 or int8 linears, got {module}")


def _one_eps(module: nn.Module) -> float:
    """The epsilon every LayerNorm in `module` shares (the native calls take one)."""
    eps = {m.eps for m in module.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) != 1:
        raise ValueError(f"native layers need one norm epsilon, got {sorted(eps)}")
    return eps.pop()


class FusedStack:
    """A transformer advanced some positions of one sequence in one native call (norms,
    rotation, causal attention, GELU and layer scales included), its caches too; set as
    `Transformer.native_stack`. It shares the layers' matrices and copies their norms and
    scales."""

    def __init__(self, transformer: Transformer):
        layers = []
        for layer in transformer.layers:
            assert isinstance(layer, TransformerLayer)
            attn = layer.self_attn
            linears = (attn.in_proj, attn.out_proj, layer.linear1, layer.linear2)
            qkv, out, l1, l2 = (_matrix(m) for m in linears)
            n1, n2 = layer.norm1, layer.norm2
            v1, v2 = (_vector(n1.weight), _vector(n1.bias)), (_vector(n2.weight), _vector(n2.bias))
            s1, s2 = (_scale(s) for s in (layer.layer_scale_1, layer.layer_scale_2))
            layers.append((*v1, qkv, out, *v2, l1, l2, s1, s2))
        attn = transformer.attention(0)
        eps = _one_eps(transformer)
        self._native = NativeTransformer(layers, attn.num_heads, eps, attn.context)

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


class FusedHead:
    """The flow head's velocity in one native call (the adaLN MLP's norms, SiLUs and
    modulations included); set as `FlowNet.native_velocity`. The time embedding stays in
    PyTorch (cached per pair of times)."""

    def __init__(self, flow_net: FlowNet):
        blocks = []
        for block in flow_net.res_blocks:
            b = cast(ResBlock, block)
            mlp_in, mlp_out = _matrix(b.mlp[0]), _matrix(b.mlp[2])
            modulation = _matrix(b.adaLN_modulation[1])
            norm = (_vector(b.in_ln.weight), _vector(b.in_ln.bias))
            blocks.append((*norm, mlp_in, mlp_out, modulation))
        final = flow_net.final_layer
        self._native = FlowHead(
            _matrix(flow_net.cond_embed),
            _matrix(flow_net.input_proj),
            blocks,
            _matrix(final.adaLN_modulation[1]),
            _matrix(final.linear),
            _one_eps(flow_net),
        )

    def __call__(self, c: torch.Tensor, time: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """c (B, D_cond), time (1, dim), x (B, latent) -> velocity (B, latent)."""
        c, time, x = (t.detach().float().contiguous() for t in (c, time, x))
        v = self._native.velocity(c.numpy(), time.numpy(), x.numpy(), torch.get_num_threads())
        return torch.from_numpy(v)


def float_linears(network: PocketTTS) -> list[nn.Linear]:
    """The float32 linears the native stacks and flow head read (every frame, from memory); not
    the flow head's time embedders, whose output is cached per pair of times."""
    flow_lm = network.flow_lm
    flow_net = flow_lm.flow_net
    stacks = (flow_lm.transformer, flow_net, network.mimi.decoder_transformer)
    cached = {id(m) for m in flow_net.time_embed.modules()}
    return [
        m
        for s in stacks
        for m in s.modules()
        if type(m) is nn.Linear
        and id(m) not in cached
        and m.weight.dtype == torch.float32
        and m.weight.is_contiguous()
    ]


def _native_pays(linear: nn.Module) -> bool:
    """Whether a stack whose linears are like `linear` runs faster natively: int8 ones always
    (exact integer sums, vectorized even in portable Rust); float32 ones where the float kernel
    has its AVX2 + FMA path (elsewhere each fused multiply-add is a library call, and PyTorch's
    BLAS is faster)."""
    return _int8_matrix(linear) is not None or kernel_isa() == "avx2"


def fuse(network: PocketTTS) -> None:
    """Sets the native stacks and flow head on a loaded network, over its current linears
    (call it again after swapping or moving them), where they pay (`_native_pays`); the others
    keep PyTorch's layers."""
    flow_lm = network.flow_lm
    for stack in (flow_lm.transformer, network.mimi.decoder_transformer.transformer):
        pays = _native_pays(stack.attention(0).in_proj)
        stack.native_stack = FusedStack(stack) if pays else None
    flow_net = flow_lm.flow_net
    flow_net.native_velocity = FusedHead(flow_net) if _native_pays(flow_net.cond_embed) else None
