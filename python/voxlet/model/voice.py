"""Voices: audio prompt -> Mimi latents -> FlowLM KV-cache prefix (`VoiceState`), import/export.

A voice state is the FlowLM's per-layer K (RoPE applied) and V for the prompt positions. The
official file format has keys `transformer.layers.{i}.self_attn/cache` float32 [2, 1, T, G, Dh]
(G: the kv heads), `.../offset` int64 [1] and `.../pad` int64 [1]; older files carry
`.../current_end` instead of `offset`, and third-party files hold `audio_prompt` [1, T, D]
conditioning, which is prompted here. The file format, the prompt's preparation and its checks
are `voxlet.native.voice`'s, shared with the torch-free model; this module holds the tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxlet.model.flow_lm import FlowLM, FlowLMState
from voxlet.model.layers.attention import LinearKV
from voxlet.model.mimi import Mimi
from voxlet.native.voice import NativeVoice, VoiceLayout, check_prompt_audio, read_safetensors
from voxlet.native.voice import end_on_pause as native_end_on_pause
from voxlet.native.voice import save_voice_file as save_arrays
from voxlet.native.voice import voice_from_arrays as native_voice_from_arrays


@dataclass(frozen=True, slots=True)
class VoiceState:
    """The FlowLM prefix of one voice: per-layer K and V, each (1, H, T, Dh). Immutable."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    @property
    def n_positions(self) -> int:
        return self.keys[0].shape[2]

    def to_flow_lm_state(self, capacity: int) -> FlowLMState:
        """A fresh FlowLM state of `capacity` positions holding this prefix (copied)."""
        caches = []
        t = self.n_positions
        if capacity < t:
            raise ValueError(f"capacity {capacity} < voice length {t}")
        for k, v in zip(self.keys, self.values, strict=True):
            cache = LinearKV.empty(k.shape[0], k.shape[1], k.shape[3], capacity)
            cache.k[:, :, :t] = k
            cache.v[:, :, :t] = v
            cache.offset = t
            caches.append(cache)
        return FlowLMState(caches)

    @staticmethod
    def from_flow_lm_state(state: FlowLMState) -> VoiceState:
        t = state.offset
        return VoiceState(
            tuple(c.k[:, :, :t].clone() for c in state.caches),
            tuple(c.v[:, :, :t].clone() for c in state.caches),
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The official safetensors layout (`NativeVoice.to_arrays`)."""
        return {k: torch.from_numpy(a) for k, a in _to_native(self).to_arrays().items()}


def end_on_pause(audio: torch.Tensor) -> torch.Tensor:
    """Trims trailing quiet, fades the last 20 ms out and appends 80 ms of silence. (N,) -> (M,)
    (`voxlet.native.voice.end_on_pause`, on the tensor's values)."""
    return torch.from_numpy(native_end_on_pause(audio.detach().numpy()))


def voice_from_audio(flow_lm: FlowLM, mimi: Mimi, audio: torch.Tensor) -> VoiceState:
    """Mono 24 kHz audio (N,) -> voice state (prompt preprocessing, Mimi encode, prefill)."""
    check_prompt_audio(audio.numpy())
    latents = mimi.encode(end_on_pause(audio).view(1, 1, -1))  # (1, T, inner_dim)
    return voice_from_conditioning(flow_lm, flow_lm.voice_conditioning(latents))


def voice_from_conditioning(flow_lm: FlowLM, conditioning: torch.Tensor) -> VoiceState:
    """Prefix embeddings (1, T, D) -> voice state, by one prefill over a cache of exactly T."""
    state = flow_lm.init_state(conditioning.shape[1])
    flow_lm.prompt(conditioning, state)
    return VoiceState.from_flow_lm_state(state)


def _from_native(voice: NativeVoice) -> VoiceState:
    return VoiceState(
        tuple(torch.from_numpy(k).unsqueeze(0) for k in voice.keys),
        tuple(torch.from_numpy(v).unsqueeze(0) for v in voice.values),
    )


def _to_native(voice: VoiceState) -> NativeVoice:
    return NativeVoice(
        tuple(k[0].numpy() for k in voice.keys), tuple(v[0].numpy() for v in voice.values)
    )


def voice_from_arrays(arrays: dict[str, np.ndarray], flow_lm: FlowLM, where: str) -> VoiceState:
    """Reads the official (or legacy, or `audio_prompt`) layout (`voxlet.native.voice`, shared
    with the torch-free model), checking it fits this model."""
    attention = flow_lm.transformer.attention(0)

    def prompt(cond: np.ndarray) -> NativeVoice:
        return _to_native(voice_from_conditioning(flow_lm, torch.from_numpy(cond).unsqueeze(0)))

    layout = VoiceLayout(
        len(flow_lm.transformer.layers), attention.kv_heads, attention.head_dim, flow_lm.d_model
    )
    return _from_native(native_voice_from_arrays(arrays, layout, where, prompt))


def load_voice_file(path: Path, flow_lm: FlowLM) -> VoiceState:
    return voice_from_arrays(read_safetensors(path), flow_lm, str(path))


def save_voice_file(voice: VoiceState, path: Path) -> None:
    """Writes the official format (`voxlet.native.voice.save_voice_file`)."""
    save_arrays(_to_native(voice).to_arrays(), path)
