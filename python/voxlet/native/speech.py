"""voxlet's own runtime as the runtime's `SpeechModel`, with no PyTorch: a checkpoint read
straight into the native FlowLM and Mimi decoder (and, on first cloning, the encoder), numpy
rows between them, and its voices.

Noise comes from numpy's PCG64, seeded per stream: repeatable within this path, a different
source from the PyTorch path's generator (the same seed gives other noise there). At
temperature 0 there is no noise, and both paths give the goldens.
"""

from __future__ import annotations

import contextlib
import math
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet._process import usable_cores
from voxlet.config import ModelConfig
from voxlet.constants import LATENT_DIM
from voxlet.errors import VoiceError
from voxlet.native.checkpoint import Checkpoint
from voxlet.native.encoder import NativeMimiEncoder
from voxlet.native.flow_lm import NativeFlowLM
from voxlet.native.huge_pages import move_in_background
from voxlet.native.layers import Array, Caches
from voxlet.native.mimi import DecoderState, NativeMimiDecoder
from voxlet.native.voice import (
    NativeVoice,
    VoiceLayout,
    check_prompt_audio,
    end_on_pause,
    read_safetensors,
    save_voice_file,
    voice_from_arrays,
)
from voxlet.plan import ChunkPlan

_ENCODER = ("mimi.encoder.", "mimi.encoder_transformer.", "mimi.downsample.")


class NativeSpeech:
    """A model loaded into voxlet's kernels: `precision` "fp32" or "int8" (the FlowLM's
    transformer, z projection and flow head, and wide decoder transformers, as the PyTorch
    path quantizes them; the SEANet decoder stays float32 here)."""

    sliced_prefill = True  # the native stack gives one prefill's bits in slices

    def __init__(self, cfg: ModelConfig, weights: str | Path, precision: str = "fp32"):
        self.config = cfg
        self.weights = Path(weights)
        ck = Checkpoint(weights)
        int8 = precision == "int8"
        self.flow_lm = NativeFlowLM(cfg, ck, int8)
        self.decoder = NativeMimiDecoder(cfg.mimi, ck, int8)
        self.has_voice_cloning = all(any(k.startswith(p) for k in ck.keys()) for p in _ENCODER)
        if self.has_voice_cloning:
            probe = ck.take(
                "mimi.encoder.model.0.conv.weight", ck.shape("mimi.encoder.model.0.conv.weight")
            )
            self.has_voice_cloning = bool(np.any(probe))
        ck.unexpected(optional_prefixes=_ENCODER)  # read (and checked) when first cloning
        # what the kernels copied is theirs: the file's pages need not stay, once the matrices
        # reading them in place have moved onto huge pages
        move_in_background(ck)
        self.dtypes = ck.dtypes
        self._encoder: NativeMimiEncoder | None = None
        self._local = threading.local()

    # the runtime's side ---------------------------------------------------------------------

    def inference(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def use_threads(self, n: int) -> None:
        self._local.threads = n

    def _threads(self) -> int:
        return getattr(self._local, "threads", 1)

    def _preparing_threads(self) -> int:
        """Threads for preparing a voice: the caller's stream setting, else every core (a
        one-off the caller waits for, as loading; the kernels' bits do not depend on it)."""
        return getattr(self._local, "threads", None) or usable_cores()

    def rng(self, seed: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(seed))

    def noise(self, plan: ChunkPlan, rng: np.random.Generator) -> Array:
        """N(0, temperature), resampled inside [-clamp, clamp] where the plan clamps; (1, 32)."""
        if plan.temperature == 0:
            return np.zeros((1, LATENT_DIM), np.float32)
        std = math.sqrt(plan.temperature)
        x = rng.standard_normal(LATENT_DIM) * std
        if plan.noise_clamp is not None:
            clamp = plan.noise_clamp
            out = np.abs(x) > clamp
            while out.any():  # rejection: the normal restricted to the interval
                x[out] = rng.standard_normal(int(out.sum())) * std
                out = np.abs(x) > clamp
        return x.astype(np.float32).reshape(1, LATENT_DIM)

    def chunk_state(self, voice: NativeVoice, plan: ChunkPlan) -> Caches:
        return voice.to_caches(voice.n_positions + plan.positions)

    def embed(self, plan: ChunkPlan) -> Array:
        return self.flow_lm.embed_tokens(plan.token_ids)

    def prompt(self, rows: Array, state: Caches) -> None:
        self.flow_lm.prompt(rows, state, self._threads())

    def prompt_batch(self, jobs: list[tuple[Array, Caches]]) -> None:
        rows, states = [r for r, _ in jobs], [s for _, s in jobs]
        self.flow_lm.prompt_batch(rows, states, self._threads())

    def prompt_chunk(self, voice: NativeVoice, plan: ChunkPlan) -> Caches:
        state = self.chunk_state(voice, plan)
        self.prompt(self.embed(plan), state)
        return state

    def step_batch(
        self, latents: list[Array | None], states: list[Caches], noises: list[Array], lsd_steps: int
    ) -> list[tuple[Array, float]]:
        return self.flow_lm.step_batch(latents, states, noises, lsd_steps, self._threads())

    def finite(self, latent: Array) -> bool:
        return bool(np.isfinite(latent).all())

    def decoder_state(self) -> DecoderState:
        return self.decoder.init_state()

    def decode(self, latents: list[Array], state: DecoderState) -> npt.NDArray[np.float32]:
        x = self.flow_lm.denormalize(np.concatenate(latents))
        return self.decoder.decode(x, state, self._threads())

    def decode_batch(
        self, jobs: list[tuple[list[Array], DecoderState]]
    ) -> list[npt.NDArray[np.float32]]:
        denormalized = [
            (self.flow_lm.denormalize(np.concatenate(latents)), state) for latents, state in jobs
        ]
        return self.decoder.decode_batch(denormalized, self._threads())

    # voices -----------------------------------------------------------------------------------

    def is_voice(self, state: object) -> bool:
        return isinstance(state, NativeVoice)

    def voice_from_conditioning(self, cond: Array) -> NativeVoice:
        """Prefix rows (T, D) -> a voice, by one prefill over caches of exactly T."""
        caches = self.flow_lm.init_state(cond.shape[0])
        self.flow_lm.prompt(cond, caches, self._preparing_threads())
        return NativeVoice.from_caches(caches)

    def encoder(self) -> NativeMimiEncoder:
        """Mimi's encoder, read from the checkpoint when first asked for (only cloning uses it)."""
        if not self.has_voice_cloning:
            raise VoiceError(
                "this checkpoint has no voice-cloning encoder; use a prebaked voice "
                "(.safetensors or a predefined name)"
            )
        if self._encoder is None:
            self._encoder = NativeMimiEncoder(self.config.mimi, Checkpoint(self.weights))
        return self._encoder

    def load_voice(self, path: Path) -> NativeVoice:
        s = self.flow_lm.shape
        layout = VoiceLayout(s.layers, s.kv_heads, s.head_dim, s.d_model)
        return voice_from_arrays(
            read_safetensors(path), layout, str(path), self.voice_from_conditioning
        )

    def clone(self, audio: npt.NDArray[np.float32]) -> NativeVoice:
        """Mono 24 kHz audio (N,) -> a voice (prompt preparation, Mimi encode, prefill)."""
        check_prompt_audio(audio)
        latents = self.encoder().encode(end_on_pause(audio), self._preparing_threads())
        return self.voice_from_conditioning(self.flow_lm.voice_conditioning(latents))

    def save_voice(self, voice: NativeVoice, path: Path) -> None:
        save_voice_file(voice.to_arrays(), path)
