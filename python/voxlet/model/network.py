"""The whole Pocket TTS network: `flow_lm.*` and `mimi.*`, the official state-dict layout."""

from __future__ import annotations

from torch import nn

from voxlet.config import ModelConfig
from voxlet.model.flow_lm import FlowLM
from voxlet.model.mimi import Mimi

# Parameters only voice cloning needs; a checkpoint may lack them (or hold zeros).
CLONING_PREFIXES = ("mimi.encoder.", "mimi.encoder_transformer.", "mimi.downsample.")


class PocketTTS(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.flow_lm = FlowLM(cfg)
        self.mimi = Mimi(cfg.mimi)


def is_cloning_key(key: str) -> bool:
    return key.startswith(CLONING_PREFIXES)
