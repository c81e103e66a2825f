"""SEANet encoder (24 kHz audio -> 200 Hz features) and decoder (the reverse), streaming.

Layout follows the checkpoint's `model.{i}` indices: convs, residual blocks and ELUs in one
Sequential. Residual block: x + Conv1x1(ELU(Conv_k(ELU(x)))) with hidden width dim / compress.
A decoder built with a backend that supports its layout decodes, once `prepare()` has handed the
backend its weights, in one kernel call (its state then is the kernel's).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from voxlet.config import SEANetConfig
from voxlet.model.backend import (
    ELU as ELU_STAGE,
)
from voxlet.model.backend import (
    TORCH,
    Backend,
    ConvParams,
    ConvTransposeParams,
    ResidualParams,
    SeanetKernel,
    SeanetLayout,
    SeanetParams,
)
from voxlet.model.backend.base import supported
from voxlet.model.layers.conv import StreamingConv1d, StreamingConvTranspose1d
from voxlet.model.layers.native import elu

_STATEFUL = (StreamingConv1d, StreamingConvTranspose1d)


class ELU(nn.Module):
    """ELU (alpha 1) in one pass (`native.elu`); `inplace` may overwrite the input."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return elu(x, self.inplace)


class ResidualBlock(nn.Module):
    def __init__(self, dim: int, kernel_size: int, dilation: int, compress: int):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            ELU(),  # not in place: x is still needed for the skip connection
            StreamingConv1d(dim, hidden, kernel_size, dilation=dilation),
            ELU(inplace=True),
            StreamingConv1d(hidden, dim, 1),
        )

    def init_state(self, batch: int = 1) -> list:
        return [m.init_state(batch) for m in self.block if isinstance(m, _STATEFUL)]

    def forward(self, x: torch.Tensor, state: list | None = None) -> torch.Tensor:
        conv_k, conv_1 = cast(StreamingConv1d, self.block[1]), cast(StreamingConv1d, self.block[3])
        s_k, s_1 = state if state is not None else (None, None)
        h = self.block[2](conv_k(self.block[0](x), s_k))
        return conv_1.plus(h, x, s_1)  # x + conv_1(h), the skip folded into the product


def _residuals(dim: int, cfg: SEANetConfig) -> list[nn.Module]:
    return [
        ResidualBlock(dim, cfg.residual_kernel_size, cfg.dilation_base**j, cfg.compress)
        for j in range(cfg.n_residual_layers)
    ]


class _SEANet(nn.Module):
    model: nn.Sequential

    def init_state(self, batch: int = 1) -> list:
        return [
            m.init_state(batch) for m in self.model if isinstance(m, (*_STATEFUL, ResidualBlock))
        ]

    def forward(self, x: torch.Tensor, state: list | None = None) -> torch.Tensor:
        states = iter(state) if state is not None else None
        for m in self.model:
            if isinstance(m, (*_STATEFUL, ResidualBlock)):
                x = m(x, next(states) if states else None)
            else:
                x = m(x)
        return x


class SEANetEncoder(_SEANet):
    """(B, 1, T) audio -> (B, dimension, T / hop)."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
        width = cfg.n_filters
        layers: list[nn.Module] = [StreamingConv1d(cfg.channels, width, cfg.kernel_size)]
        for ratio in reversed(cfg.ratios):
            layers += _residuals(width, cfg)
            layers += [ELU(), StreamingConv1d(width, width * 2, 2 * ratio, ratio)]
            width *= 2
        layers += [ELU(), StreamingConv1d(width, cfg.dimension, cfg.last_kernel_size)]
        self.model = nn.Sequential(*layers)


def _conv(conv: StreamingConv1d) -> ConvParams:
    c = conv.conv
    return ConvParams(c.weight, c.bias, c.dilation[0])


class SEANetDecoder(_SEANet):
    """(B, dimension, T) -> (B, 1, T * hop) audio."""

    def __init__(self, cfg: SEANetConfig, backend: Backend = TORCH):
        super().__init__()
        self.layout = SeanetLayout(
            cfg.dimension, cfg.n_filters, tuple(cfg.ratios), cfg.kernel_size, cfg.last_kernel_size
        )
        self._backend = backend if backend.supports_seanet(self.layout) else TORCH
        self._kernel: SeanetKernel | None = None
        width = cfg.n_filters * 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [StreamingConv1d(cfg.dimension, width, cfg.kernel_size)]
        for ratio in cfg.ratios:
            layers += [
                ELU(inplace=True),  # its input is not used again
                StreamingConvTranspose1d(width, width // 2, 2 * ratio, ratio),
            ]
            width //= 2
            layers += _residuals(width, cfg)
        layers += [ELU(), StreamingConv1d(width, cfg.channels, cfg.last_kernel_size)]
        self.model = nn.Sequential(*layers)

    def params(self) -> SeanetParams:
        """The weights, by name, stage by stage, as a backend takes them."""
        stages: list = []
        for m in self.model:
            if isinstance(m, StreamingConv1d):
                stages.append(_conv(m))
            elif isinstance(m, StreamingConvTranspose1d):
                c = m.convtr
                assert c.bias is not None
                stages.append(ConvTransposeParams(c.weight, c.bias, m.stride))
            elif isinstance(m, ResidualBlock):
                conv_k, conv_1 = (
                    cast(StreamingConv1d, m.block[1]),
                    cast(StreamingConv1d, m.block[3]),
                )
                stages.append(ResidualParams(_conv(conv_k), _conv(conv_1)))
            else:
                assert isinstance(m, ELU)
                stages.append(ELU_STAGE)
        return SeanetParams(self.layout, tuple(stages))

    def prepare(self) -> None:
        """Hands the current weights to the backend chosen at construction (call it again
        after changing them, then start new states); a decoder whose convolutions were given
        int8 products stays in PyTorch."""
        quantized = any(getattr(m, "int8", None) is not None for m in self.modules())
        what = "SEANet decoder with int8 convolutions"
        if self._backend is TORCH or not supported(self._backend, what, self.layout, not quantized):
            self._kernel = None
            return
        self._kernel = self._backend.seanet(self.params())

    @property
    def kernel(self) -> SeanetKernel | None:
        return self._kernel

    def init_state(self, batch: int = 1):
        if self._kernel is not None and batch == 1:
            return self._kernel.state()
        return super().init_state(batch)

    def forward(self, x: torch.Tensor, state=None) -> torch.Tensor:
        if self._kernel is not None and x.shape[0] == 1 and not isinstance(state, list | None):
            return self._kernel(x, state)
        return super().forward(x, state)
