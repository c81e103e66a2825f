"""FlowLM: a causal transformer that writes one normalized 32-d latent per 80 ms step.

Prefix (voice conditioning, then text embeddings) goes in through `prompt`; each `step` takes the
previous normalized latent (None for BOS), runs one position, and returns the next latent from the
flow head plus the raw EOS logit. State (`FlowLMState`) is owned by the thread that calls these.

Small layouts (english_2m/7m/18m) add a low-rank text table (`conditioner.proj` maps its rows to
d_model) and a z projection after `out_norm` that both heads read (`z_dim`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from voxlet.config import ModelConfig
from voxlet.constants import LATENT_DIM
from voxlet.model.backend import TORCH, Backend, LinearKernel
from voxlet.model.layers.attention import LinearKV
from voxlet.model.layers.flow_net import FlowNet
from voxlet.model.layers.rope import rotation
from voxlet.model.layers.transformer import Transformer


@dataclass(slots=True)
class FlowLMState:
    """One KV cache per transformer layer; all share the same offset."""

    caches: list[LinearKV]

    @property
    def offset(self) -> int:
        return self.caches[0].offset


class _Conditioner(nn.Module):
    """The text table: rows of `dim` values, or (low rank) of `rank` values mapped to `dim`
    by a bias-free `proj`."""

    def __init__(self, n_rows: int, dim: int, rank: int | None = None):
        super().__init__()
        width = rank or dim
        # no random init (the checkpoint fills it): nn.Embedding's normal_ init on the meta
        # device imports torch._dynamo, sympy and triton, 76 MB of resident memory for nothing
        self.embed = nn.Embedding(n_rows, width, _weight=torch.empty(n_rows, width))
        self.proj = nn.Linear(width, dim, bias=False) if rank else None

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        rows = self.embed(token_ids).float()  # int8 keeps the file's dtype
        return rows if self.proj is None else self.proj(rows)


class FlowLM(nn.Module):
    emb_mean: torch.Tensor
    emb_std: torch.Tensor

    def __init__(self, cfg: ModelConfig, backend: Backend = TORCH):
        super().__init__()
        fl = cfg.flow_lm
        tr = fl.transformer
        d = tr.d_model
        self.d_model = d
        table = fl.lookup_table
        self.conditioner = _Conditioner(table.n_bins + 1, table.dim, table.rank)
        self.transformer = Transformer(
            d,
            tr.num_heads,
            tr.num_layers,
            tr.ffn_dim,
            tr.max_period,
            attn_dim=tr.attention_dim,
            kv_heads=tr.kv_heads,
            backend=backend,
        )
        self.input_linear = nn.Linear(LATENT_DIM, d, bias=False)
        self.out_norm = nn.LayerNorm(d, eps=1e-5)
        head_dim = fl.z_dim or d  # what both heads read
        self.z_proj: nn.Module | None = nn.Linear(d, fl.z_dim, bias=False) if fl.z_dim else None
        self._z_backend = backend if fl.z_dim and backend.supports_linear(fl.z_dim, d) else TORCH
        self._z_kernel: LinearKernel | None = None
        self.out_eos = nn.Linear(head_dim, 1)
        self.flow_net = FlowNet(
            head_dim, LATENT_DIM, fl.flow.dim, fl.flow.depth, fl.flow.type, backend
        )
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

    def prepare(self) -> None:
        """Hands the current weights to the backend chosen at construction."""
        self.transformer.prepare()
        self.flow_net.prepare()
        if self.z_proj is not None and self._z_backend is not TORCH:
            self._z_kernel = self._z_backend.linear(self.z_proj)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, T, D) text embeddings."""
        return self.conditioner(token_ids)

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

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """out_norm hidden (B, D) -> what both heads read: z_proj(h) (B, z_dim), or h itself
        where the layout has no z projection."""
        if self.z_proj is None:
            return h
        if self._z_kernel is not None and h.shape[0] == 1:
            return self._z_kernel(h)
        return self.z_proj(h)

    def step(
        self, latent: torch.Tensor | None, state: FlowLMState, noise: torch.Tensor, lsd_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame: -> (next normalized latent (B, 32), raw EOS logit (B,))."""
        z = self.project(self.hidden(latent, state))
        eos_logit = self.out_eos(z)[:, 0]
        return self.flow_net.sample(z, noise, lsd_steps), eos_logit

    def step_batch(
        self,
        latents: list[torch.Tensor | None],
        states: list[FlowLMState],
        noises: list[torch.Tensor],
        lsd_steps: int,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One frame of each of several sessions: `step` for each, with the transformer, where
        its backend can (`step_rows`), taking every session's row in one call that reads each
        weight once. Each session gets exactly the bits `step` gives it alone: the rest (input
        linear, norm, heads) runs row by row, as `step` runs it."""
        kernel = self.transformer.kernel
        step_rows = getattr(kernel, "step_rows", None)
        if step_rows is None or len(states) < 2:
            return [
                self.step(latent, state, noise, lsd_steps)
                for latent, state, noise in zip(latents, states, noises, strict=True)
            ]
        bos = self.bos_emb.view(1, LATENT_DIM)
        rows = torch.cat([self.input_linear(bos if x is None else x) for x in latents])
        attn = self.transformer.attention(0)
        turns = torch.cat(
            [rotation(state.offset, 1, attn.head_dim, attn.max_period) for state in states]
        )
        out = step_rows(rows, [state.caches for state in states], turns)
        results = []
        for b, noise in enumerate(noises):
            z = self.project(self.out_norm(out[b].view(1, 1, -1))[:, -1])
            results.append((self.flow_net.sample(z, noise, lsd_steps), self.out_eos(z)[:, 0]))
        return results

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalized latents (..., 32) -> Mimi decoder input space."""
        return latent * self.emb_std + self.emb_mean
