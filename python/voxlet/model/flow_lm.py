"""FlowLM: a causal transformer that writes one normalized 32-d latent per 80 ms step.

Prefix (voice conditioning, then text embeddings) goes in through `prompt`; each `step` takes the
previous normalized latent (None for BOS), runs one position, and returns the next latent from the
flow head plus the raw EOS logit. State (`FlowLMState`) is owned by the thread that calls these.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from voxlet.config import ModelConfig
from voxlet.constants import LATENT_DIM
from voxlet.model.layers.attention import LinearKV
from voxlet.model.layers.flow_net import FlowNet, lsd_decode
from voxlet.model.layers.transformer import Transformer


@dataclass(slots=True)
class FlowLMState:
    """One KV cache per transformer layer; all share the same offset."""

    caches: list[LinearKV]

    @property
    def offset(self) -> int:
        return self.caches[0].offset


class _Conditioner(nn.Module):
    def __init__(self, n_rows: int, dim: int):
        super().__init__()
        # no random init (the checkpoint fills it): nn.Embedding's normal_ init on the meta
        # device imports torch._dynamo, sympy and triton, 76 MB of resident memory for nothing
        self.embed = nn.Embedding(n_rows, dim, _weight=torch.empty(n_rows, dim))


class FlowLM(nn.Module):
    emb_mean: torch.Tensor
    emb_std: torch.Tensor

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        fl = cfg.flow_lm
        d = fl.transformer.d_model
        self.d_model = d
        self.conditioner = _Conditioner(fl.lookup_table.n_bins + 1, fl.lookup_table.dim)
        self.transformer = Transformer(
            d,
            fl.transformer.num_heads,
            fl.transformer.num_layers,
            fl.transformer.ffn_dim,
            fl.transformer.max_period,
        )
        self.input_linear = nn.Linear(LATENT_DIM, d, bias=False)
        self.out_norm = nn.LayerNorm(d, eps=1e-5)
        self.out_eos = nn.Linear(d, 1)
        self.flow_net = FlowNet(d, LATENT_DIM, fl.flow.dim, fl.flow.depth)
        self.bos_emb = nn.Parameter(torch.empty(LATENT_DIM))
        self.register_buffer("emb_mean", torch.empty(LATENT_DIM))
        self.register_buffer("emb_std", torch.empty(LATENT_DIM))
        self.speaker_proj_weight = nn.Parameter(torch.empty(d, cfg.voice_dim))
        self.bos_before_voice: nn.Parameter | None = None
        if fl.insert_bos_before_voice:
            self.bos_before_voice = nn.Parameter(torch.empty(1, 1, d))

    def init_state(self, capacity: int, batch: int = 1) -> FlowLMState:
        caches = self.transformer.init_state(batch, capacity)
        return FlowLMState([c for c in caches if isinstance(c, LinearKV)])

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, D) text embeddings."""
        return self.conditioner.embed(token_ids).float()  # int8 keeps the file's dtype

    def voice_conditioning(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw Mimi latents (B, T, inner_dim) -> prefix (B, [1 +] T, D), with bos_before_voice."""
        cond = latents @ self.speaker_proj_weight.T  # (B, T, D)
        if self.bos_before_voice is not None:
            bos = self.bos_before_voice.expand(cond.shape[0], -1, -1)
            cond = torch.cat([bos, cond], dim=1)
        return cond

    def prompt(self, prefix: torch.Tensor, state: FlowLMState) -> None:
        """Runs prefix embeddings (B, T, D) through the transformer, filling the KV caches."""
        self.transformer(prefix, state.caches)

    def hidden(self, latent: torch.Tensor | None, state: FlowLMState) -> torch.Tensor:
        """Previous normalized latent (B, 32) or None (BOS) -> out_norm hidden (B, D)."""
        if latent is None:
            latent = self.bos_emb.view(1, LATENT_DIM)
        x = self.input_linear(latent).unsqueeze(1)  # (B, 1, D)
        return self.out_norm(self.transformer(x, state.caches))[:, -1]

    def step(
        self, latent: torch.Tensor | None, state: FlowLMState, noise: torch.Tensor, lsd_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame: -> (next normalized latent (B, 32), raw EOS logit (B,))."""
        h = self.hidden(latent, state)
        eos_logit = self.out_eos(h)[:, 0]
        return lsd_decode(self.flow_net, h, noise, lsd_steps), eos_logit

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalized latents (..., 32) -> Mimi decoder input space."""
        return latent * self.emb_std + self.emb_mean
