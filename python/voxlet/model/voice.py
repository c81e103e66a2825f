"""Voices: audio prompt -> Mimi latents -> FlowLM KV-cache prefix (`VoiceState`), import/export.

A voice state is the FlowLM's per-layer K (RoPE applied) and V for the prompt positions. The
official file format has keys `transformer.layers.{i}.self_attn/cache` float32 [2, 1, T, G, Dh]
(G: the kv heads), `.../offset` int64 [1] and `.../pad` int64 [1]; older files carry
`.../current_end` instead of `offset`, and third-party files hold `audio_prompt` [1, T, D]
conditioning, which is prompted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxlet.constants import (
    VOICE_PAUSE_DB,
    VOICE_PAUSE_FRAME_SAMPLES,
    VOICE_TAIL_SILENCE_SAMPLES,
)
from voxlet.errors import VoiceError
from voxlet.model.flow_lm import FlowLM, FlowLMState
from voxlet.model.layers.attention import LinearKV
from voxlet.model.mimi import Mimi

_MODULE = "transformer.layers.{}.self_attn"


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
        """The official safetensors layout."""
        out: dict[str, torch.Tensor] = {}
        for i, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            name = _MODULE.format(i)
            out[f"{name}/cache"] = torch.stack([k, v]).permute(0, 1, 3, 2, 4).contiguous()
            out[f"{name}/offset"] = torch.tensor([self.n_positions], dtype=torch.int64)
            out[f"{name}/pad"] = torch.zeros(1, dtype=torch.int64)
        return out


def end_on_pause(audio: torch.Tensor) -> torch.Tensor:
    """Trims trailing quiet, fades the last 20 ms out and appends 80 ms of silence. (N,) -> (M,)."""
    n = audio.shape[-1]
    frame = VOICE_PAUSE_FRAME_SAMPLES
    n_frames = max(1, -(-n // frame))
    padded = torch.nn.functional.pad(audio, (0, n_frames * frame - n))
    rms = padded.view(n_frames, frame).pow(2).mean(dim=1).sqrt()
    db = 20 * torch.log10(rms + 1e-12)
    loud = torch.nonzero(db >= db.max() - VOICE_PAUSE_DB).flatten()
    end = min(n, (int(loud[-1]) + 1) * frame)
    kept = audio[:end].clone()
    fade = min(frame, end)
    kept[end - fade :] *= torch.linspace(1, 0, fade)
    return torch.cat([kept, torch.zeros(VOICE_TAIL_SILENCE_SAMPLES)])


def voice_from_audio(flow_lm: FlowLM, mimi: Mimi, audio: torch.Tensor) -> VoiceState:
    """Mono 24 kHz audio (N,) -> voice state (prompt preprocessing, Mimi encode, prefill)."""
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise VoiceError("voice prompt audio must be a non-empty mono signal")
    if not bool(torch.isfinite(audio).all()):
        raise VoiceError("voice prompt audio holds NaN or infinite samples")
    latents = mimi.encode(end_on_pause(audio).view(1, 1, -1))  # (1, T, inner_dim)
    return voice_from_conditioning(flow_lm, flow_lm.voice_conditioning(latents))


def voice_from_conditioning(flow_lm: FlowLM, conditioning: torch.Tensor) -> VoiceState:
    """Prefix embeddings (1, T, D) -> voice state, by one prefill over a cache of exactly T."""
    state = flow_lm.init_state(conditioning.shape[1])
    flow_lm.prompt(conditioning, state)
    return VoiceState.from_flow_lm_state(state)


def voice_from_tensors(tensors: dict[str, torch.Tensor], flow_lm: FlowLM, where: str) -> VoiceState:
    """Reads the official (or legacy) voice layout, checking it fits this model."""
    if "audio_prompt" in tensors:
        cond = tensors["audio_prompt"].float()
        if cond.ndim != 3 or cond.shape[0] != 1 or cond.shape[2] != flow_lm.d_model:
            raise VoiceError(
                f"{where}: audio_prompt has shape {list(cond.shape)}, this model expects "
                f"[1, T, {flow_lm.d_model}]"
            )
        if not bool(torch.isfinite(cond).all()):
            raise VoiceError(f"{where}: audio_prompt holds NaN or infinite values")
        return voice_from_conditioning(flow_lm, cond)
    layers = flow_lm.transformer.layers
    attention = flow_lm.transformer.attention(0)
    heads, head_dim = attention.kv_heads, attention.head_dim
    keys, values = [], []
    for i in range(len(layers)):
        name = _MODULE.format(i)
        cache = tensors.get(f"{name}/cache")
        if cache is None:
            raise VoiceError(f"{where}: not a voice state for this model (no {name}/cache)")
        if f"{name}/offset" in tensors:
            offset = int(tensors[f"{name}/offset"].flatten()[0])
        elif f"{name}/current_end" in tensors:  # legacy: the step count is the shape
            offset = int(tensors[f"{name}/current_end"].shape[0])
        else:
            raise VoiceError(f"{where}: {name} has neither offset nor current_end")
        if (
            cache.ndim != 5
            or cache.shape[0] != 2
            or cache.shape[1] != 1
            or tuple(cache.shape[3:]) != (heads, head_dim)
        ):
            raise VoiceError(
                f"{where}: {name}/cache has shape {list(cache.shape)}, this model expects "
                f"[2, 1, T, {heads}, {head_dim}] (voice states are model-specific)"
            )
        if not 0 < offset <= cache.shape[2]:
            raise VoiceError(
                f"{where}: {name} offset {offset} outside cache length {cache.shape[2]}"
            )
        kv = cache[:, :, :offset].float().permute(0, 1, 3, 2, 4)  # (2, 1, H, T, Dh)
        keys.append(kv[0].contiguous())
        values.append(kv[1].contiguous())
    extra = [
        k
        for k in tensors
        if k.startswith("transformer.layers.") and int(k.split(".")[2]) >= len(layers)
    ]
    if extra:
        raise VoiceError(f"{where}: has {extra[0]!r}, but this model has {len(layers)} layers")
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        if not (bool(torch.isfinite(k).all()) and bool(torch.isfinite(v).all())):
            raise VoiceError(f"{where}: {_MODULE.format(i)}/cache holds NaN or infinite values")
    return VoiceState(tuple(keys), tuple(values))


def load_voice_file(path: Path, flow_lm: FlowLM) -> VoiceState:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise VoiceError(f"cannot read voice file {path}: {e}") from e
    return voice_from_tensors(tensors, flow_lm, str(path))


def save_voice_file(voice: VoiceState, path: Path) -> None:
    """Writes the official format: a regular file through a unique temporary file renamed when
    complete (an interruption leaves the old file or nothing), a FIFO or device in place."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from voxlet._files import Replaced, plan_output

    try:
        plan = plan_output(path, "voice file")  # "cannot write voice file PATH: ..."
    except OSError as e:
        raise VoiceError(str(e)) from e
    written = plan.temporary if isinstance(plan, Replaced) else plan.target
    try:
        save_file(voice.to_tensors(), str(written))
        if isinstance(plan, Replaced):
            plan.commit()
    except BaseException as e:  # Ctrl-C and signals too: no temporary file left behind
        if isinstance(plan, Replaced):
            plan.discard()
        if not isinstance(e, OSError | SafetensorError):
            raise
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise VoiceError(f"cannot write voice file {path}: {reason}") from e


def audio_to_mono(samples: np.ndarray) -> torch.Tensor:
    """(N,) or (N, C) float samples -> mono float32 tensor (N,), channels averaged."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return torch.from_numpy(np.ascontiguousarray(x))
