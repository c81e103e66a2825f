"""FlowLM without PyTorch: the text table, the voice projection, the transformer stack, the out
norm, the z projection, the EOS head and the flow head (lsd, pointwise or drifting), each read
from the checkpoint's own keys (`flow_lm.*`) into voxlet's kernels.

The same steps as `voxlet.model.flow_lm.FlowLM` (the readable definition, and the reference this
path is tested against), on numpy rows: a step takes the previous normalized latent (None for
BOS), runs one position and returns the next latent and the raw EOS logit.
"""

from __future__ import annotations

import numpy as np

from voxlet._native import F32Matrix, FlowBlockWeights, FlowHead
from voxlet.config import ModelConfig
from voxlet.constants import LATENT_DIM
from voxlet.native.checkpoint import Checkpoint, as_float32
from voxlet.native.layers import (
    NARROW,
    Array,
    Caches,
    Matrix,
    Norm,
    Stack,
    StackShape,
    apply,
    linear,
)

_P = "flow_lm"
_TIME_FREQS = 128


class _TimeEmbedder:
    """t -> cos, sin of t freqs -> linear, SiLU, linear -> x alpha / sqrt(1e-5 + var(x)),
    the variance unbiased."""

    def __init__(self, ck: Checkpoint, key: str, dim: int, int8: bool):
        self.freqs = ck.take(f"{key}.freqs", (_TIME_FREQS,))
        self.first = linear(ck, f"{key}.mlp.0", dim, 2 * _TIME_FREQS, bias=True, int8=int8)
        self.second = linear(ck, f"{key}.mlp.2", dim, dim, bias=True, int8=int8)
        self.alpha = ck.take(f"{key}.mlp.3.alpha", (dim,))

    def __call__(self, t: float) -> Array:
        args = np.float32(t) * self.freqs
        waves = np.concatenate([np.cos(args), np.sin(args)]).reshape(1, -1).astype(np.float32)
        h = apply(self.first, waves)
        h = apply(self.second, (h / (1 + np.exp(-h))).astype(np.float32))
        var = np.float32(1e-5) + h.var(axis=-1, ddof=1, keepdims=True, dtype=np.float32)
        return h * (self.alpha / np.sqrt(var))


class FlowHeadNet:
    """The flow head in one native call per evaluation; lsd heads' time embeddings cached."""

    def __init__(self, ck: Checkpoint, cfg: ModelConfig, cond_dim: int, int8: bool):
        flow = cfg.flow_lm.flow
        p, dim = f"{_P}.flow_net", flow.dim
        self.kind = flow.type
        self._times = (
            [_TimeEmbedder(ck, f"{p}.time_embed.{i}", dim, int8) for i in (0, 1)]
            if self.kind == "lsd"
            else []
        )
        self._cache: dict[tuple[float, float], Array] = {}

        def m(key: str, rows: int, cols: int) -> Matrix:
            return linear(ck, f"{p}.{key}", rows, cols, bias=True, int8=int8, input_major=False)

        blocks = [
            FlowBlockWeights(
                norm=Norm.take(ck, f"{p}.res_blocks.{i}.in_ln", dim, 1e-6).native(),
                mlp_in=m(f"res_blocks.{i}.mlp.0", dim, dim),
                mlp_out=m(f"res_blocks.{i}.mlp.2", dim, dim),
                modulation=m(f"res_blocks.{i}.adaLN_modulation.1", 3 * dim, dim),
            )
            for i in range(flow.depth)
        ]
        self._native = FlowHead(
            m("cond_embed", dim, cond_dim),
            m("input_proj", dim, LATENT_DIM),
            blocks,
            m("final_layer.adaLN_modulation.1", 2 * dim, dim),
            m("final_layer.linear", LATENT_DIM, dim),
            1e-6,
        )

    def time_embedding(self, s: float, t: float) -> Array:
        emb = self._cache.get((s, t))
        if emb is None:
            both = (self._times[0](s) + self._times[1](t)) / np.float32(2)
            emb = self._cache[(s, t)] = both.reshape(-1).astype(np.float32)
        return emb

    def velocity(self, c: Array, s: float | None, t: float | None, x: Array) -> Array:
        time = None if s is None or t is None else self.time_embedding(s, t)
        return self._native.velocity(c, time, np.ascontiguousarray(x, np.float32), 1)

    def sample(self, c: Array, x0: Array, steps: int) -> Array:
        """lsd: `steps` Euler steps from x0; pointwise: x0 + f(c, x0); drifting: f(c, x0)."""
        if self.kind == "lsd":
            x = x0
            for i in range(steps):
                x = x + self.velocity(c, i / steps, (i + 1) / steps, x) / np.float32(steps)
            return x
        f = self.velocity(c, None, None, x0)
        return x0 + f if self.kind == "pointwise" else f


class NativeFlowLM:
    """FlowLM on voxlet's kernels, its linears float32 or (`int8`: the transformer, the z
    projection and the flow head with its time embedders, as the PyTorch path quantizes them)
    int8."""

    def __init__(self, cfg: ModelConfig, ck: Checkpoint, int8: bool = False):
        fl = cfg.flow_lm
        tr = fl.transformer
        d = self.d_model = tr.d_model
        table = fl.lookup_table
        width = table.rank or table.dim
        # read in place (bf16 as its bits): a lookup widens only the rows it gathers
        self.table = ck.take_stored(f"{_P}.conditioner.embed.weight", (table.n_bins + 1, width))
        self.table_proj = (
            linear(ck, f"{_P}.conditioner.proj", table.dim, table.rank) if table.rank else None
        )
        self.shape = StackShape(
            d,
            tr.num_heads,
            tr.kv_heads,
            tr.head_dim,
            tr.ffn_dim,
            tr.num_layers,
            tr.max_period,
            None,
            False,
        )
        self.stack = Stack(ck, f"{_P}.transformer", self.shape, int8)
        self.input_linear = linear(ck, f"{_P}.input_linear", d, LATENT_DIM)
        self.out_norm = Norm.take(ck, f"{_P}.out_norm", d, 1e-5)
        head_dim = fl.z_dim or d
        self.z_proj = linear(ck, f"{_P}.z_proj", fl.z_dim, d, int8=int8) if fl.z_dim else None
        self.out_eos = linear(ck, f"{_P}.out_eos", 1, head_dim, bias=True)
        self.flow = FlowHeadNet(ck, cfg, head_dim, int8)
        self.bos = ck.take(f"{_P}.bos_emb", (LATENT_DIM,)).reshape(1, LATENT_DIM)
        self.emb_mean = ck.take(f"{_P}.emb_mean", (LATENT_DIM,))
        self.emb_std = ck.take(f"{_P}.emb_std", (LATENT_DIM,))
        speaker = ck.take(f"{_P}.speaker_proj_weight", (d, cfg.voice_dim))
        self.speaker_proj = F32Matrix(np.ascontiguousarray(speaker), None, cfg.voice_dim <= NARROW)
        self.bos_before_voice = (
            ck.take(f"{_P}.bos_before_voice", (1, 1, d)).reshape(1, d)
            if fl.insert_bos_before_voice
            else None
        )

    def init_state(self, capacity: int) -> Caches:
        """Caches for `capacity` positions, NaN until written (as the reference fills them)."""
        return Caches.empty(self.shape, capacity, np.nan)

    def embed_tokens(self, token_ids: np.ndarray) -> Array:
        """(T,) token ids -> (T, D) text embeddings."""
        rows = self.table[np.asarray(token_ids, dtype=np.int64)]
        if rows.dtype == np.uint16:  # bfloat16 bits, widened exactly
            rows = as_float32(rows, "BF16")
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        return rows if self.table_proj is None else apply(self.table_proj, rows)

    def voice_conditioning(self, latents: Array) -> Array:
        """Raw Mimi latents (T, inner_dim) -> prefix ([1 +] T, D), with bos_before_voice."""
        cond = apply(self.speaker_proj, latents)
        if self.bos_before_voice is not None:
            cond = np.concatenate([self.bos_before_voice, cond])
        return cond

    def prompt(self, prefix: Array, state: Caches, threads: int = 1) -> None:
        """Runs prefix rows (T, D) through the transformer, filling the caches."""
        self.stack.forward(prefix, state, threads)

    def prompt_batch(self, prefixes: list[Array], states: list[Caches], threads: int = 1) -> None:
        """Several sequences' prefix rows (T_b, D) into their caches in one pass over the
        weights, each the bits `prompt` gives it alone (with several, each T_b >= 2)."""
        if len(prefixes) == 1:
            self.prompt(prefixes[0], states[0], threads)
        else:
            self.stack.forward_spans(prefixes, states, threads)

    def _heads(self, out: Array, noise: Array, lsd_steps: int) -> list[tuple[Array, float]]:
        """The transformer's rows (B, D) and their noise (B, 32) -> each row's (latent (1, 32),
        EOS logit), every row the bits it gets alone (each product `apply_rows`)."""
        h = self.out_norm(out)
        z = h if self.z_proj is None else self.z_proj.apply_rows(h)
        eos = self.out_eos.apply_rows(z)[:, 0]
        latents = self.flow.sample(z, noise, lsd_steps)
        return [(latents[b : b + 1], float(eos[b])) for b in range(out.shape[0])]

    def step(
        self, latent: Array | None, state: Caches, noise: Array, lsd_steps: int
    ) -> tuple[Array, float]:
        """One frame: previous normalized latent (1, 32) or None (BOS) -> (next normalized
        latent (1, 32), raw EOS logit)."""
        x = apply(self.input_linear, self.bos if latent is None else latent)
        [one] = self._heads(self.stack.forward(x, state), noise, lsd_steps)
        return one

    def step_batch(
        self,
        latents: list[Array | None],
        states: list[Caches],
        noises: list[Array],
        lsd_steps: int,
        threads: int = 1,
    ) -> list[tuple[Array, float]]:
        """One frame of each of several sequences, the transformer and the heads reading each
        weight once for all; each gets the bits `step` gives it alone."""
        rows = np.concatenate(
            [apply(self.input_linear, self.bos if x is None else x) for x in latents]
        )
        if len(states) == 1:
            out = self.stack.forward(rows, states[0], threads)
        else:
            out = self.stack.forward_rows(rows, states, threads)
        return self._heads(out, np.concatenate(noises), lsd_steps)

    def hidden(self, latent: Array | None, state: Caches) -> Array:
        """The out_norm output (1, D) of one step (for tests and debugging)."""
        x = apply(self.input_linear, self.bos if latent is None else latent)
        return self.out_norm(self.stack.forward(x, state))

    def denormalize(self, latent: Array) -> Array:
        return latent * self.emb_std + self.emb_mean
