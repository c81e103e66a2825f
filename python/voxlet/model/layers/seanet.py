"""SEANet encoder (24 kHz audio -> 200 Hz features) and decoder (the reverse), streaming.

Layout follows the checkpoint's `model.{i}` indices: convs, residual blocks and ELUs in one
Sequential. Residual block: x + Conv1x1(ELU(Conv_k(ELU(x)))) with hidden width dim / compress.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from voxlet.config import SEANetConfig
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


class SEANetDecoder(_SEANet):
    """(B, dimension, T) -> (B, 1, T * hop) audio."""

    def __init__(self, cfg: SEANetConfig):
        super().__init__()
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
