"""The LSD flow head: v = flow_net(c, s, t, x), an adaLN MLP conditioned on h and two times.

y = cond_embed(c) + (T_s(s) + T_t(t)) / 2; x -> input_proj -> res-blocks -> final layer.
The time embedders end in a norm that divides by the *unbiased* variance without centring x.
`voxlet.model.fused` sets `.native_velocity`: the whole MLP in one native call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# c (B, D_cond), the time embedding (1, dim), x (B, latent) -> velocity (B, latent)
NativeVelocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


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
    def __init__(self, cond_dim: int, latent_dim: int, dim: int, depth: int):
        super().__init__()
        self.time_embed = nn.ModuleList([TimeEmbedder(dim), TimeEmbedder(dim)])
        self.cond_embed = nn.Linear(cond_dim, dim)
        self.input_proj = nn.Linear(latent_dim, dim)
        self.res_blocks = nn.ModuleList(ResBlock(dim) for _ in range(depth))
        self.final_layer = FinalLayer(dim, latent_dim)
        self._time_cache: dict[tuple[float, float], torch.Tensor] = {}
        self.native_velocity: NativeVelocity | None = None

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
        """As forward, with scalar times shared by the batch."""
        if self.native_velocity is not None:
            return self.native_velocity(c, self.time_embedding(s, t), x)
        return self._run(self.time_embedding(s, t) + self.cond_embed(c), x)

    def forward(
        self, c: torch.Tensor, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """c (B, D_cond), s and t (B, 1), x (B, latent) -> velocity (B, latent)."""
        y = (self.time_embed[0](s) + self.time_embed[1](t)) / 2 + self.cond_embed(c)
        return self._run(y, x)

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
