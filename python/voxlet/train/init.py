"""Initial weights: from scratch (the modules are built for loading checkpoints, so a few
parameters start empty; this gives each a starting value, by name and config), or from a
trained model's (`--init-from`)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import torch
from torch import nn

from voxlet.config import MimiConfig
from voxlet.model.layers.transformer import LayerScale
from voxlet.model.mimi import Mimi
from voxlet.model.network import PocketTTS

log = logging.getLogger("voxlet.train")


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


def pretrained(model: str | Path) -> tuple[Path, PocketTTS]:
    """A trained model to start a new run from (fine-tuning, or the next session's run of
    voxlet's own voice): an exported model folder (or its `config.yaml`) -> the config's path
    and the whole network in float32 (the file may hold bfloat16)."""
    from voxlet.config import ModelConfig
    from voxlet.model.weights import load_network

    path = Path(model)
    config = path / "config.yaml" if path.is_dir() else path
    if not config.is_file():
        raise FileNotFoundError(f"--init-from {model}: no config.yaml there (an exported model)")
    cfg = ModelConfig.load(config)
    weights = cfg.resolve(cfg.weights_path)
    if weights is None or "://" in weights:
        raise ValueError(f"--init-from {config}: its weights_path must name a local file")
    return config, load_network(cfg, weights).network


def for_new_run(
    init_from: str | Path | None, resumed: bool, run_folder: Path
) -> tuple[Path, PocketTTS] | None:
    """`pretrained(init_from)` for a new run; None without one, or for a resumed run (which
    carries on from its own checkpoint, and says so)."""
    if init_from is None:
        return None
    if resumed:
        log.info("%s resumes from its checkpoint; --init-from is for new runs", run_folder)
        return None
    return pretrained(init_from)


def copy_weights(target: nn.Module, source: nn.Module, what: str, keep: Collection[str] = ()):
    """`source`'s state into `target` (same layout, every key but `keep`); a layout mismatch
    is one line naming the first key and both shapes."""
    mine, theirs = target.state_dict(), source.state_dict()
    for k, v in mine.items():
        if k in keep:
            continue
        if k not in theirs:
            raise ValueError(f"--init-from: {what} has no {k!r}")
        if theirs[k].shape != v.shape:
            raise ValueError(
                f"--init-from: {what} {k!r} is {list(theirs[k].shape)}, the run's layout "
                f"needs {list(v.shape)}"
            )
    with torch.no_grad():
        for k, v in mine.items():
            if k not in keep:
                v.copy_(theirs[k])
