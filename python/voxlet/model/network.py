"""The whole Pocket TTS network: `flow_lm.*` and `mimi.*`, the official state-dict layout."""

from __future__ import annotations

import torch
from torch import nn

from voxlet.config import ModelConfig
from voxlet.model.backend import TORCH, Backend
from voxlet.model.flow_lm import FlowLM
from voxlet.model.mimi import Mimi

# Parameters only voice cloning needs; a checkpoint may lack them (or hold zeros).
CLONING_PREFIXES = ("mimi.encoder.", "mimi.encoder_transformer.", "mimi.downsample.")


class PocketTTS(nn.Module):
    """`backend` (`voxlet.model.backend`) is asked, layer by layer, what it runs; the rest runs
    in PyTorch. Call `prepare()` once the weights are in place (and after changing them)."""

    def __init__(self, cfg: ModelConfig, backend: Backend = TORCH):
        super().__init__()
        self.flow_lm = FlowLM(cfg, backend)
        self.mimi = Mimi(cfg.mimi, backend)

    def prepare(self) -> None:
        """Hands the current weights of every backend-served layer to the backend."""
        self.flow_lm.prepare()
        self.mimi.prepare()

    def streamed_linears(self) -> list[nn.Linear]:
        """The float32 linears the FlowLM step, its heads and the Mimi decoder transformer read
        every frame (from memory); not the flow head's time embedders, whose output is cached
        per pair of times."""
        flow_lm = self.flow_lm
        flow_net = flow_lm.flow_net
        stacks = [flow_lm.transformer, flow_net, self.mimi.decoder_transformer]
        if flow_lm.z_proj is not None:
            stacks.append(flow_lm.z_proj)
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


def is_cloning_key(key: str) -> bool:
    return key.startswith(CLONING_PREFIXES)
