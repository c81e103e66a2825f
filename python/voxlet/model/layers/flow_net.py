"""The flow head: an adaLN MLP conditioned on the FlowLM's output, of three types.

- `lsd`: v = flow_net(c, s, t, x) with y = cond_embed(c) + (T_s(s) + T_t(t)) / 2; sampled by
  `steps` equal Euler steps from noise x0. The time embedders end in a norm that divides by
  the *unbiased* variance without centring x.
- `pointwise` (english_2m) and `drifting` (english_7m, 18m): no time embedders, y =
  cond_embed(c), one evaluation a frame: latent = x0 + f(c, x0) and f(c, x0) respectively.

In every type x -> input_proj -> res-blocks -> final layer. A head built with a backend that
supports it runs the whole MLP in one kernel call once `prepare()` has handed over its weights.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from voxlet.model.backend import (
    TORCH,
    Backend,
    FlowBlockParams,
    FlowHeadLayout,
    FlowHeadParams,
    HeadKernel,
    NormParams,
)

FLOW_TYPES = ("lsd", "pointwise", "drifting")


class _AlphaNorm(nn.Module):
    """x * alpha / sqrt(1e-5 + var_unbiased(x)); x itself is not centred (reference quirk)."""

    def __init__(self, dim: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = 1e-5 + x.var(dim=-1, keepdim=True)
        return x * (self.alpha * torch.rsqrt(var))


class TimeEmbedder(nn.Module):
    freqs: torch.Tensor

    def __init__(self, dim: int, n_freqs: int = 128):
        super().__init__()
        self.register_buffer("freqs", torch.empty(n_freqs))
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_freqs, dim), nn.SiLU(), nn.Linear(dim, dim), _AlphaNorm(dim)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t * self.freqs  # (B, 1) * (F,) -> (B, F)
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class ResBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.in_ln = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.adaLN_modulation(y).chunk(3, dim=-1)
        return x + gate * self.mlp(_modulate(self.in_ln(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(y).chunk(2, dim=-1)
        return self.linear(_modulate(self.norm_final(x), shift, scale))


class FlowNet(nn.Module):
    def __init__(
        self,
        cond_dim: int,
        latent_dim: int,
        dim: int,
        depth: int,
        kind: str = "lsd",
        backend: Backend = TORCH,
    ):
        super().__init__()
        if kind not in FLOW_TYPES:
            raise ValueError(f"flow head type must be one of {FLOW_TYPES}, got {kind!r}")
        self.kind = kind
        timed = kind == "lsd"
        self.time_embed = nn.ModuleList([TimeEmbedder(dim), TimeEmbedder(dim)] if timed else [])
        self.cond_embed = nn.Linear(cond_dim, dim)
        self.input_proj = nn.Linear(latent_dim, dim)
        self.res_blocks = nn.ModuleList(ResBlock(dim) for _ in range(depth))
        self.final_layer = FinalLayer(dim, latent_dim)
        self._time_cache: dict[tuple[float, float], torch.Tensor] = {}
        self.layout = FlowHeadLayout(cond_dim, dim, depth, latent_dim, timed)
        self._backend = backend if backend.supports_flow_head(self.layout) else TORCH
        self._kernel: HeadKernel | None = None

    @property
    def timed(self) -> bool:
        return self.layout.timed

    def params(self) -> FlowHeadParams:
        """The weights, by name, as a backend takes them."""
        blocks = []
        for block in self.res_blocks:
            b = cast(ResBlock, block)
            blocks.append(
                FlowBlockParams(NormParams.of(b.in_ln), b.mlp[0], b.mlp[2], b.adaLN_modulation[1])
            )
        final = self.final_layer
        return FlowHeadParams(
            self.layout,
            cond=self.cond_embed,
            input=self.input_proj,
            blocks=tuple(blocks),
            final_modulation=final.adaLN_modulation[1],
            final_linear=final.linear,
            final_eps=final.norm_final.eps,
        )

    def prepare(self) -> None:
        """Hands the current weights to the backend chosen at construction (call it again
        after changing them); clears the time-embedding cache."""
        self.clear_cache()
        self._kernel = (
            self._backend.flow_head(self.params()) if self._backend is not TORCH else None
        )

    @property
    def kernel(self) -> HeadKernel | None:
        return self._kernel

    def time_embedding(self, s: float, t: float) -> torch.Tensor:
        """(T_s(s) + T_t(t)) / 2 for scalar times, (1, dim); cached, as decoding reuses the same
        few (s, t) pairs every frame. Call `clear_cache` after changing the weights."""
        key = (s, t)
        emb = self._time_cache.get(key)
        if emb is None:
            s_t, t_t = torch.full((1, 1), s), torch.full((1, 1), t)
            emb = (self.time_embed[0](s_t) + self.time_embed[1](t_t)) / 2
            self._time_cache[key] = emb
        return emb

    def clear_cache(self) -> None:
        self._time_cache.clear()

    def velocity(self, c: torch.Tensor, s: float, t: float, x: torch.Tensor) -> torch.Tensor:
        """An lsd head's forward with scalar times shared by the batch."""
        if self._kernel is not None:
            return self._kernel(c, self.time_embedding(s, t), x)
        return self._run(self.time_embedding(s, t) + self.cond_embed(c), x)

    def untimed(self, c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """f(c, x) of a head without time inputs (pointwise, drifting): (B, latent)."""
        if self._kernel is not None:
            return self._kernel(c, None, x)
        return self._run(self.cond_embed(c), x)

    def forward(
        self,
        c: torch.Tensor,
        s: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        x: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """c (B, D_cond), s and t (B, 1) (lsd only; None otherwise), x (B, latent) -> the
        head's raw output (B, latent): a velocity (lsd) or f(c, x)."""
        assert x is not None
        if not self.timed:
            return self._run(self.cond_embed(c), x)
        assert s is not None and t is not None, "an lsd head takes times s and t"
        y = (self.time_embed[0](s) + self.time_embed[1](t)) / 2 + self.cond_embed(c)
        return self._run(y, x)

    def sample(self, c: torch.Tensor, x0: torch.Tensor, steps: int) -> torch.Tensor:
        """The next latent from conditioning c (B, D_cond) and start noise x0 (B, latent):
        lsd integrates over `steps` steps; pointwise gives x0 + f(c, x0), drifting f(c, x0),
        one evaluation whatever `steps` says."""
        if self.kind == "lsd":
            return lsd_decode(self, c, x0, steps)
        f = self.untimed(c, x0)
        return x0 + f if self.kind == "pointwise" else f

    def _run(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.input_proj(x)
        for block in self.res_blocks:
            h = block(h, y)
        return self.final_layer(h, y)


def lsd_decode(flow_net: FlowNet, c: torch.Tensor, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrates x from noise x0 over `steps` equal steps: x += v(c, i/N, (i+1)/N, x) / N."""
    x = x0
    for i in range(steps):
        x = x + flow_net.velocity(c, i / steps, (i + 1) / steps, x) / steps
    return x
