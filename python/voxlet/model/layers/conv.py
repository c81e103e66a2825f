"""Causal streaming Conv1d and ConvTranspose1d with explicit carried state.

Conv1d keeps the last (effective_kernel - stride) input steps: zeros at start, or copies of the
first input step in "replicate" mode. ConvTranspose1d computes the full transposed conv, adds the
carried tail to its first (kernel - stride) outputs, emits T * stride samples and keeps the rest
(minus the bias) for the next call. A fresh state gives the non-streaming result.

Fast paths compute the same sums as the generic kernels (to float rounding), avoiding PyTorch's
slow small-input conv kernels: a 1x1 conv is a matrix product; a small stride-1 conv on one
item is one accumulated matrix product per kernel tap; and a transposed conv whose kernel is
twice its stride (every one in Mimi) is one matrix product whose two halves are overlap-added
into the output (by `native.overlap_add` in one pass, for float32 without autograd). In int8
mode `voxlet.model.quantize` sets an int8 product (`.int8`) on the widest convolutions, which
then replaces that matrix product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from voxlet.model.layers.native import native, overlap_add

# An int8 stand-in for a conv's weight product, set by `voxlet.model.quantize`: rows of inputs
# (N, C_in * kernel) -> (N, C_out * ...) with the weight laid out as the fast paths below use it.
Product = Callable[[torch.Tensor], torch.Tensor]

_MAX_TAPS_WEIGHTS = 1 << 18  # above this, PyTorch's conv is as fast and needs no weight copy


@dataclass(slots=True)
class ConvState:
    previous: torch.Tensor | None = None  # (B, C_in, effective_kernel - stride); None: not started


@dataclass(slots=True)
class ConvTrState:
    partial: torch.Tensor | None = None  # (B, C_out, kernel - stride); None: zeros


class StreamingConv1d(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        pad_mode: str = "constant",
    ):
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.stride = stride
        self.context = (kernel_size - 1) * dilation + 1 - stride  # input steps carried over
        self.pad_mode = pad_mode
        self._pointwise = kernel_size == 1 and stride == 1 and groups == 1 and bias
        small = in_channels * out_channels * kernel_size <= _MAX_TAPS_WEIGHTS
        self._by_taps = kernel_size > 1 and stride == 1 and groups == 1 and bias and small
        self._taps: tuple[tuple[int, int, int], list[torch.Tensor]] | None = None
        # (B T, C_in k) windows -> (B T, C_out) incl. bias, for stride 1 and dilation 1 only
        self.int8: Product | None = None

    def uses_int8_product(self) -> bool:
        """Whether an int8 product can stand in: stride 1, no dilation or groups, a kernel wider
        than 1 and weights too large for the per-tap path."""
        c = self.conv
        plain = c.stride[0] == 1 and c.dilation[0] == 1 and c.groups == 1
        return plain and c.kernel_size[0] > 1 and not self._by_taps

    def init_state(self, batch: int = 1) -> ConvState:
        return ConvState()

    def forward(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """x (B, C_in, T) with T a multiple of stride -> (B, C_out, T / stride)."""
        state = state if state is not None else ConvState()
        conv = self.conv
        taps_apart = self._by_taps and x.shape[0] == 1 and self.pad_mode == "constant"
        if taps_apart and conv.bias is not None and self.context > 0:
            # the carried steps and the new ones multiply apart: no concatenated copy
            prev = state.previous
            y = self._sum_of_taps(x[0], None if prev is None else prev[0], conv.bias)
            state.previous = self._carried(prev, x)
            return y.unsqueeze(0)
        if self.context > 0:
            prev = state.previous
            if prev is None:
                if self.pad_mode == "replicate":
                    prev = x[..., :1].expand(-1, -1, self.context)
                else:
                    prev = x.new_zeros(x.shape[0], x.shape[1], self.context)
            x = torch.cat([prev, x], dim=-1)
            state.previous = x[..., x.shape[-1] - self.context :]
        if self.int8 is not None:
            return self._by_windows(x, self.int8)
        if self._pointwise and conv.bias is not None:  # (C_out, C_in) @ (C_in, T) per item
            return torch.matmul(conv.weight[:, :, 0], x) + conv.bias.view(-1, 1)
        return conv(x)

    def plus(
        self, x: torch.Tensor, skip: torch.Tensor, state: ConvState | None = None
    ) -> torch.Tensor:
        """skip + self(x): for a 1x1 conv with a bias, one product that starts from the skip
        (skip + W x, then + b in place) instead of three passes."""
        conv = self.conv
        if not (self._pointwise and conv.bias is not None):
            return skip + self(x, state)
        w = conv.weight[:, :, 0]
        if x.shape[0] == 1:
            y = torch.addmm(skip[0], w, x[0]).unsqueeze(0)
        else:
            y = torch.baddbmm(skip, w.expand(x.shape[0], -1, -1), x)
        return y.add_(conv.bias.view(-1, 1))

    def _carried(self, prev: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """The last `context` input steps of [prev | x] (prev None: zeros), as their own copy."""
        if x.shape[-1] >= self.context:
            return x[..., x.shape[-1] - self.context :].clone()
        if prev is None:
            prev = x.new_zeros(x.shape[0], x.shape[1], self.context)
        return torch.cat([prev, x], dim=-1)[..., -self.context :]

    def _by_windows(self, x: torch.Tensor, product: Product) -> torch.Tensor:
        """y[:, :, t] = product(x[:, :, t : t + k]) for x (B, C_in, T + k - 1)."""
        b, k = x.shape[0], self.conv.kernel_size[0]
        windows = x.unfold(-1, k, 1).transpose(1, 2)  # (B, T, C_in, k): W's (C_in, k) order
        t = windows.shape[1]
        y = product(windows.reshape(b * t, -1))  # (B T, C_out)
        return y.view(b, t, -1).transpose(1, 2)

    def _sum_of_taps(
        self, x: torch.Tensor, prev: torch.Tensor | None, bias: torch.Tensor
    ) -> torch.Tensor:
        """y = b + sum_j W_j @ [prev | x][:, j d : j d + T] for x (C_in, T) and the carried
        prev (C_in, context) (None: zeros), without concatenating: tap j reads x from output
        step lag_j = context - j d on, and prev before that."""
        taps = self._tap_weights()
        dilation, context, t = self.conv.dilation[0], self.context, x.shape[-1]
        y = torch.addmm(bias.view(-1, 1), taps[-1], x)  # the last tap reads x in step
        for j, w in enumerate(taps[:-1]):
            offset = j * dilation
            lag = context - offset
            if lag < t:
                y[:, lag:].addmm_(w, x[:, : t - lag])
            if prev is not None:
                n = min(lag, t)
                y[:, :n].addmm_(w, prev[:, offset : offset + n])
        return y

    def _tap_weights(self) -> list[torch.Tensor]:
        """Contiguous (C_out, C_in) weight of each tap, rebuilt if the weight was replaced or
        changed in place (inference-mode tensors keep no version: replacement only)."""
        w = self.conv.weight
        key = (id(w), w.data_ptr(), 0 if w.is_inference() else w._version)
        if self._taps is None or self._taps[0] != key:
            taps = [w[:, :, j].detach().contiguous() for j in range(w.shape[-1])]
            self._taps = (key, taps)
        return self._taps[1]


class StreamingConvTranspose1d(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.convtr = nn.ConvTranspose1d(
            in_channels, out_channels, kernel_size, stride, groups=groups, bias=bias
        )
        self.stride = stride
        self.overlap = kernel_size - stride
        self._two_halves = kernel_size == 2 * stride and groups in (1, in_channels)
        # (B T, C_in) -> (B T, C_out 2s), no bias, for k = 2s and groups = 1 only
        self.int8: Product | None = None

    def uses_int8_product(self) -> bool:
        """Whether an int8 product can stand in: kernel 2 x stride, no groups."""
        return self._two_halves and self.convtr.groups == 1

    def init_state(self, batch: int = 1) -> ConvTrState:
        return ConvTrState()

    def forward(self, x: torch.Tensor, state: ConvTrState | None = None) -> torch.Tensor:
        """x (B, C_in, T) -> (B, C_out, T * stride); the last `overlap` samples are carried."""
        state = state if state is not None else ConvTrState()
        if self._two_halves and native(x):  # the taps' overlap-add in one pass
            y, state.partial = overlap_add(self._taps(x), self.convtr.bias, state.partial)
            return y
        y = self._full(x)  # (B, C_out, T * stride + overlap)
        if self.overlap <= 0:
            return y
        if state.partial is not None:
            y[..., : self.overlap] += state.partial
        tail = y[..., y.shape[-1] - self.overlap :]
        bias = self.convtr.bias
        state.partial = tail - bias.view(-1, 1) if bias is not None else tail.clone()
        return y[..., : y.shape[-1] - self.overlap]

    def _taps(self, x: torch.Tensor) -> torch.Tensor:
        """z[b, t, o, j]: input step t's contribution to output tap j of channel o, (B, T, C_out,
        2 s) for k = 2s: one matrix product (or a broadcast product, depthwise)."""
        w, s = self.convtr.weight, self.stride  # w: (C_in, C_out / groups, 2 s)
        b, c_in, t = x.shape
        if self.int8 is not None:
            return self.int8(x.transpose(1, 2)).view(b, t, w.shape[1], 2 * s)
        if self.convtr.groups == 1:
            # z[b, t, o, j] = sum_c x[b, c, t] w[c, o, j]; the weight is used as stored
            return torch.matmul(x.transpose(1, 2), w.flatten(1)).view(b, t, w.shape[1], 2 * s)
        # depthwise: z[b, t, c, j] = x[b, c, t] w[c, 0, j]
        return x.transpose(1, 2).unsqueeze(-1) * w.view(1, 1, c_in, 2 * s)

    def _full(self, x: torch.Tensor) -> torch.Tensor:
        """The full transposed conv (B, C_in, T) -> (B, C_out, (T + 1) * stride) when k = 2s.
        Where autograd records (training), PyTorch's own kernel: half the time of the two
        halves' product and copies, forward and backward."""
        recorded = torch.is_grad_enabled() and (x.requires_grad or self.convtr.weight.requires_grad)
        if not self._two_halves or recorded:
            return self.convtr(x)
        s = self.stride
        z = self._taps(x)
        b, t, c_out = z.shape[:3]
        y = x.new_empty(b, c_out, t + 1, s)  # output sample (t, j) at t * s + j
        y[:, :, :t] = z[..., :s].transpose(1, 2)  # taps 0..s-1 land in their own step
        y[:, :, t] = 0
        y[:, :, 1:] += z[..., s:].transpose(1, 2)  # taps s..2s-1 land one step later
        y = y.view(b, c_out, (t + 1) * s)
        if self.convtr.bias is not None:
            y += self.convtr.bias.view(1, -1, 1)
        return y
