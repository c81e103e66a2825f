"""Initial weights for training from scratch. The modules are built for loading checkpoints,
so a few parameters start empty; this gives each a starting value, by name and config."""

from __future__ import annotations

import torch
from torch import nn

from voxlet.config import MimiConfig
from voxlet.model.layers.transformer import LayerScale
from voxlet.model.mimi import Mimi


def init_mimi(mimi: Mimi, cfg: MimiConfig) -> None:
    """LayerScale to the config's `layer_scale`; convolutions and linears keep PyTorch's
    defaults."""
    scales = {
        "encoder_transformer": cfg.transformer.layer_scale,
        "decoder_transformer": cfg.decoder_transformer_config.layer_scale,
    }
    with torch.no_grad():
        for name, module in mimi.named_modules():
            if isinstance(module, LayerScale):
                module.scale.fill_(scales[name.split(".")[0]])


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
