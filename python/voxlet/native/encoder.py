"""Mimi's encoder without PyTorch, for cloning a voice from audio: 24 kHz samples -> raw latents
at 12.5 Hz, one shot, from the checkpoint's own keys (`mimi.encoder`, `mimi.encoder_transformer`,
`mimi.downsample`).

The same stages as `voxlet.model.mimi.Mimi.encode`: the SEANet encoder (causal convolutions,
strided ones downsampling by each ratio, residual blocks, ELUs), the encoder transformer over a
window of `context` positions, and the strided downsample (its first step replicated before the
start), time-major throughout. Each convolution is one product of its input windows, taken a
block of output steps at a time so memory stays bounded by the activations themselves.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from voxlet._native import F32Matrix, elu_into
from voxlet.config import MimiConfig
from voxlet.native.checkpoint import Checkpoint
from voxlet.native.layers import Array, Caches, Stack, StackShape

_BLOCK = 4096  # output steps per product


def _elu(x: Array) -> Array:
    y = np.empty_like(x)
    elu_into(x, y)
    return y


class _Conv:
    """A causal convolution over time-major rows (T, C_in) -> (T / stride, C_out)."""

    def __init__(
        self,
        ck: Checkpoint,
        key: str,
        c_out: int,
        c_in: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = True,
        replicate: bool = False,
    ):
        w = ck.take(f"{key}.weight", (c_out, c_in, kernel)).reshape(c_out, c_in * kernel)
        b = ck.take(f"{key}.bias", (c_out,)).copy() if bias else None
        self.matrix = F32Matrix(np.ascontiguousarray(w), b, False)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.context = (kernel - 1) * dilation + 1 - stride  # steps before the first
        self.replicate = replicate

    def __call__(self, x: Array, threads: int = 1) -> Array:
        n, c_in = x.shape
        if self.replicate:
            before = np.repeat(x[:1], self.context, axis=0)
        else:
            before = np.zeros((self.context, c_in), np.float32)
        padded = np.concatenate([before, x])
        span = (self.kernel - 1) * self.dilation + 1
        # (windows, C_in, span) -> every stride-th window, every dilation-th step of it
        windows = sliding_window_view(padded, span, axis=0)[:: self.stride, :, :: self.dilation]
        windows = windows[: n // self.stride]
        out = np.empty((windows.shape[0], self.matrix.rows), np.float32)
        for start in range(0, windows.shape[0], _BLOCK):
            block = windows[start : start + _BLOCK].reshape(-1, c_in * self.kernel)
            out[start : start + _BLOCK] = self.matrix.apply(np.ascontiguousarray(block), threads)
        return out


class _Residual:
    def __init__(
        self, ck: Checkpoint, key: str, dim: int, kernel: int, dilation: int, compress: int
    ):
        hidden = dim // compress
        self.conv_k = _Conv(ck, f"{key}.block.1.conv", hidden, dim, kernel, dilation=dilation)
        self.conv_1 = _Conv(ck, f"{key}.block.3.conv", dim, hidden, 1)

    def __call__(self, x: Array, threads: int) -> Array:
        return x + self.conv_1(_elu(self.conv_k(_elu(x), threads)), threads)


class NativeMimiEncoder:
    def __init__(self, cfg: MimiConfig, ck: Checkpoint):
        self.cfg = cfg
        s = cfg.seanet
        p = "mimi.encoder.model"
        width = s.n_filters
        stages: list = [_Conv(ck, f"{p}.0.conv", width, s.channels, s.kernel_size)]
        for ratio in reversed(s.ratios):
            for j in range(s.n_residual_layers):
                stages.append(
                    _Residual(
                        ck,
                        f"{p}.{len(stages)}",
                        width,
                        s.residual_kernel_size,
                        s.dilation_base**j,
                        s.compress,
                    )
                )
            conv = _Conv(ck, f"{p}.{len(stages) + 1}.conv", 2 * width, width, 2 * ratio, ratio)
            stages += ["elu", conv]
            width *= 2
        last = _Conv(ck, f"{p}.{len(stages) + 1}.conv", s.dimension, width, s.last_kernel_size)
        self.stages = [*stages, "elu", last]
        tr = cfg.transformer
        self.shape = StackShape.codec(tr)
        self.transformer = Stack(ck, "mimi.encoder_transformer.transformer", self.shape, False)
        stride = cfg.steps_per_frame
        self.downsample = _Conv(
            ck,
            "mimi.downsample.conv.conv",
            cfg.inner_dim,
            s.dimension,
            2 * stride,
            stride,
            bias=False,
            replicate=True,
        )

    def encode(self, audio: Array, threads: int = 1) -> Array:
        """Mono audio (N,) at 24 kHz -> raw latents (ceil(N / 1920), inner_dim); the audio is
        right-padded with zeros to whole frames first."""
        frame = self.cfg.samples_per_frame
        x = np.zeros((-(-audio.shape[0] // frame) * frame, 1), np.float32)
        x[: audio.shape[0], 0] = audio
        for stage in self.stages:
            x = _elu(x) if stage == "elu" else stage(x, threads)
        caches = Caches.empty(self.shape, self.shape.context or 0, 0.0)
        step = self.cfg.steps_per_frame  # as the decoder feeds it: a frame's rows a call
        x = np.concatenate(
            [
                self.transformer.forward(x[i : i + step], caches, threads)
                for i in range(0, len(x), step)
            ]
        )
        return self.downsample(x, threads)
