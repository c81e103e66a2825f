"""The pieces every native part is built from, fed straight from a `Checkpoint` by key: linears
(float32 or int8 matrices), layer norms, RoPE turns, transformer stacks and their caches.

Every product runs in voxlet's kernels (`voxlet._native`), which sum in one fixed order: the
bits do not depend on the thread count or on numpy's BLAS. The small glue left (a layer norm of
one row, an embedding gather) is numpy in float32.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from voxlet._native import F32Matrix, Int8Matrix, LayerWeights, NormWeights
from voxlet._native import Transformer as NativeTransformer
from voxlet._process import usable_cores
from voxlet.config import MimiTransformerConfig
from voxlet.native.checkpoint import Checkpoint

Matrix = F32Matrix | Int8Matrix
Array = NDArray[np.float32]

# Products summing fewer terms per output than this stay float, on both paths: with few 32-byte
# blocks per row the int8 kernel's per-row overhead outweighs its faster arithmetic (measured on
# the Mimi decoder: a transposed conv over 128 channels ran 1.5x slower in int8, over 512 1.5x
# faster).
INT8_MIN_DEPTH = 512

# Products up to this wide take input-major copies of their float weights, one output summed
# per lane (as the PyTorch path's native backend does, `_NARROW` there).
NARROW = 256


def linear(
    ck: Checkpoint,
    key: str,
    rows: int,
    cols: int,
    bias: bool = False,
    int8: bool = False,
    input_major: bool | None = None,
) -> Matrix:
    """The matrix of linear `key` (`key.weight` (rows, cols) [and `key.bias`]): int8, an
    input-major float32 copy (narrow ones), or the checkpoint's own float32 or bf16 weights
    read in place (listed in `ck.read_in_place`)."""
    b = ck.take(f"{key}.bias", (rows,)).copy() if bias else None
    if int8:  # bf16 bits read in place, on every core: loading is what a cold start waits for
        return Int8Matrix(ck.take_stored(f"{key}.weight", (rows, cols)), b, usable_cores())
    narrow = cols <= NARROW if input_major is None else input_major
    if narrow:
        return F32Matrix(np.ascontiguousarray(ck.take(f"{key}.weight", (rows, cols))), b, True)
    matrix = F32Matrix(ck.take_stored(f"{key}.weight", (rows, cols)), b)
    ck.read_in_place[f"{key}.weight"] = matrix  # moved onto huge pages later (huge_pages.py)
    return matrix


def conv_as_linear(ck: Checkpoint, key: str, rows: int, cols: int) -> Matrix:
    """A bias-free 1x1 convolution `key.weight` (rows, cols, 1) as a matrix."""
    w = ck.take(f"{key}.weight", (rows, cols, 1)).reshape(rows, cols)
    return F32Matrix(np.ascontiguousarray(w), None, cols <= NARROW)


def apply(m: Matrix, x: Array, threads: int = 1) -> Array:
    return m.apply(np.ascontiguousarray(x, dtype=np.float32), threads)


@dataclass(frozen=True, slots=True)
class Norm:
    """An affine layer norm over the last axis."""

    weight: Array
    bias: Array
    eps: float

    @staticmethod
    def take(ck: Checkpoint, key: str, dim: int, eps: float) -> Norm:
        return Norm(ck.take(f"{key}.weight", (dim,)), ck.take(f"{key}.bias", (dim,)), eps)

    def native(self) -> NormWeights:
        return NormWeights(self.weight.copy(), self.bias.copy(), self.eps)

    def __call__(self, x: Array) -> Array:
        return layer_norm(x, self.eps) * self.weight + self.bias


def layer_norm(x: Array, eps: float) -> Array:
    """(x - mean) / sqrt(var + eps) over the last axis, without affine parameters."""
    mean = x.mean(axis=-1, keepdims=True, dtype=np.float32)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True, dtype=np.float32)
    return centred / np.sqrt(var + np.float32(eps))


@functools.lru_cache(maxsize=16)
def _frequencies(head_dim: int, max_period: float) -> Array:
    half = np.arange(head_dim // 2, dtype=np.float32)
    return np.exp(half * np.float32(-math.log(max_period) * 2 / head_dim)).astype(np.float32)


def turns(offset: int, length: int, head_dim: int, max_period: float) -> Array:
    """RoPE rotation of positions [offset, offset + length): (length, head_dim / 2, 2) float32
    [cos, sin] per interleaved pair (pair i of position p turns by p max_period^(-2i/D))."""
    positions = np.arange(offset, offset + length, dtype=np.float32).reshape(length, 1)
    angles = positions * _frequencies(head_dim, max_period)
    return np.ascontiguousarray(np.stack([np.cos(angles), np.sin(angles)], axis=-1))


def turns_of_rows(offsets: list[int], head_dim: int, max_period: float) -> Array:
    """One position each: (len(offsets), head_dim / 2, 2)."""
    positions = np.asarray(offsets, dtype=np.float32).reshape(-1, 1)
    angles = positions * _frequencies(head_dim, max_period)
    return np.ascontiguousarray(np.stack([np.cos(angles), np.sin(angles)], axis=-1))


@dataclass(frozen=True, slots=True)
class StackShape:
    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    layers: int
    max_period: float
    context: int | None  # None: every position (FlowLM); else a ring of that many (Mimi)
    layer_scale: bool

    @staticmethod
    def codec(tr: MimiTransformerConfig) -> StackShape:
        """A Mimi transformer's (encoder or decoder side): every head its own kv head, layer
        scales, a window of `context` positions."""
        return StackShape(
            tr.d_model,
            tr.num_heads,
            tr.num_heads,
            tr.d_model // tr.num_heads,
            tr.dim_feedforward,
            tr.num_layers,
            tr.max_period,
            tr.context,
            True,
        )


class Caches:
    """One sequence's keys and values, per layer (kv_heads, slots, head_dim): every position
    since the start (`slots` = capacity) or a ring of the last `context` (slot p % context)."""

    __slots__ = ("keys", "offset", "values")

    def __init__(self, keys: list[Array], values: list[Array], offset: int = 0):
        self.keys, self.values, self.offset = keys, values, offset

    @staticmethod
    def empty(shape: StackShape, slots: int, fill: float) -> Caches:
        def one() -> Array:
            return np.full((shape.kv_heads, slots, shape.head_dim), fill, np.float32)

        n = shape.layers
        return Caches([one() for _ in range(n)], [one() for _ in range(n)])

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[1]


class Stack:
    """A transformer advanced in one native call (norms, RoPE, attention over grouped kv heads,
    GELU, layer scales), its linears float32 or (`int8`) int8."""

    def __init__(self, ck: Checkpoint, prefix: str, shape: StackShape, int8: bool):
        self.shape = shape
        d, a = shape.d_model, shape.heads * shape.head_dim
        qkv = a + 2 * shape.kv_heads * shape.head_dim
        narrow = d <= NARROW
        layers = []
        for i in range(shape.layers):
            p = f"{prefix}.layers.{i}"

            def m(key: str, rows: int, cols: int, p: str = p) -> Matrix:
                return linear(ck, f"{p}.{key}", rows, cols, int8=int8, input_major=narrow)

            scales: list[Array | None] = [None, None]
            if shape.layer_scale:
                scales = [ck.take(f"{p}.layer_scale_{j}.scale", (d,)).copy() for j in (1, 2)]
            layers.append(
                LayerWeights(
                    norm1=Norm.take(ck, f"{p}.norm1", d, 1e-5).native(),
                    in_proj=m("self_attn.in_proj", qkv, d),
                    out_proj=m("self_attn.out_proj", d, a),
                    norm2=Norm.take(ck, f"{p}.norm2", d, 1e-5).native(),
                    linear1=m("linear1", shape.ffn, d),
                    linear2=m("linear2", d, shape.ffn),
                    layer_scale_1=scales[0],
                    layer_scale_2=scales[1],
                )
            )
        self._native = NativeTransformer(
            layers, heads=shape.heads, kv_heads=shape.kv_heads, context=shape.context
        )

    def forward(self, x: Array, caches: Caches, threads: int = 1) -> Array:
        """Rows x (T, D) at the caches' offset -> (T, D), a new array; the caches advance."""
        out = np.array(x, dtype=np.float32, order="C")  # the kernel works in place
        t = out.shape[0]
        start = caches.offset
        if self.shape.context is None and start + t > caches.capacity:
            raise RuntimeError(f"KV cache full: {start + t} positions > capacity {caches.capacity}")
        rot = turns(start, t, self.shape.head_dim, self.shape.max_period)
        self._native.forward(out, caches.keys, caches.values, start, rot, threads)
        caches.offset = start + t
        return out

    def _check_room(self, caches: list[Caches], counts: list[int]) -> None:
        """A RuntimeError naming the first sequence whose caches lack room for its rows."""
        for b, (c, t) in enumerate(zip(caches, counts, strict=True)):
            if self.shape.context is None and c.offset + t > c.capacity:
                raise RuntimeError(
                    f"KV cache of sequence {b} full: {c.offset + t} positions > capacity "
                    f"{c.capacity}"
                )

    def forward_spans(self, xs: list[Array], caches: list[Caches], threads: int = 1) -> list[Array]:
        """Several sequences' rows advanced together (xs[b] (T_b, D) at caches[b]'s offset;
        with several, each T_b >= 2): each comes out with the bits `forward` gives it alone,
        the linears reading each weight once for all; every cache advances by its rows."""
        counts = [int(x.shape[0]) for x in xs]
        self._check_room(caches, counts)
        out = np.concatenate(xs).astype(np.float32, order="C")  # a new array: worked in place
        hd, period = self.shape.head_dim, self.shape.max_period
        pairs = zip(caches, counts, strict=True)
        rot = np.concatenate([turns(c.offset, t, hd, period) for c, t in pairs])
        offsets = [c.offset for c in caches]
        self._native.forward_spans(
            out,
            [c.keys for c in caches],
            [c.values for c in caches],
            offsets,
            counts,
            rot,
            threads,
        )
        for c, t in zip(caches, counts, strict=True):
            c.offset += t
        return np.split(out, np.cumsum(counts)[:-1])

    def forward_rows(self, x: Array, caches: list[Caches], threads: int = 1) -> Array:
        """One position of each of several sequences (x (B, D), row b at caches[b]'s offset),
        each row the bits `forward` gives it alone; every cache advances by one."""
        self._check_room(caches, [1] * len(caches))
        out = np.array(x, dtype=np.float32, order="C")
        offsets = [c.offset for c in caches]
        rot = turns_of_rows(offsets, self.shape.head_dim, self.shape.max_period)
        self._native.forward_rows(
            out, [c.keys for c in caches], [c.values for c in caches], offsets, rot, threads
        )
        for c in caches:
            c.offset += 1
        return out
