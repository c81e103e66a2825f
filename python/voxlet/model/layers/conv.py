"""Causal streaming Conv1d and ConvTranspose1d with explicit carried state.

Conv1d keeps the last (effective_kernel - stride) input steps: zeros at start, or copies of the
first input step in "replicate" mode. ConvTranspose1d computes the full transposed conv, adds the
carried tail to its first (kernel - stride) outputs, emits T * stride samples and keeps the rest
(minus the bias) for the next call. A fresh state gives the non-streaming result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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

    def init_state(self, batch: int = 1) -> ConvState:
        return ConvState()

    def forward(self, x: torch.Tensor, state: ConvState | None = None) -> torch.Tensor:
        """x (B, C_in, T) with T a multiple of stride -> (B, C_out, T / stride)."""
        state = state if state is not None else ConvState()
        if self.context > 0:
            prev = state.previous
            if prev is None:
                if self.pad_mode == "replicate":
                    prev = x[..., :1].expand(-1, -1, self.context)
                else:
                    prev = x.new_zeros(x.shape[0], x.shape[1], self.context)
            x = torch.cat([prev, x], dim=-1)
            state.previous = x[..., x.shape[-1] - self.context :]
        return self.conv(x)


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

    def init_state(self, batch: int = 1) -> ConvTrState:
        return ConvTrState()

    def forward(self, x: torch.Tensor, state: ConvTrState | None = None) -> torch.Tensor:
        """x (B, C_in, T) -> (B, C_out, T * stride); the last `overlap` samples are carried."""
        state = state if state is not None else ConvTrState()
        y = self.convtr(x)  # (B, C_out, T * stride + overlap)
        if self.overlap <= 0:
            return y
        if state.partial is not None:
            y[..., : self.overlap] += state.partial
        tail = y[..., y.shape[-1] - self.overlap :]
        bias = self.convtr.bias
        state.partial = tail - bias.view(-1, 1) if bias is not None else tail.clone()
        return y[..., : y.shape[-1] - self.overlap]
