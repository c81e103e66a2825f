"""Voices without PyTorch: a voice is the FlowLM's per-layer keys (RoPE applied) and values for
the prompt positions, `NativeVoice`. Read from and written to the official safetensors layout
(`transformer.layers.{i}.self_attn/cache` float32 [2, 1, T, G, Dh], `.../offset` and `.../pad`
int64 [1]; legacy `.../current_end`; third-party `audio_prompt` [1, T, D] conditioning, which is
prompted), or cloned from audio: the reference's prompt preparation (`end_on_pause`), Mimi's
encoder, the speaker projection, one prefill.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from voxlet.constants import VOICE_PAUSE_DB, VOICE_PAUSE_FRAME_SAMPLES, VOICE_TAIL_SILENCE_SAMPLES
from voxlet.errors import VoiceError
from voxlet.native.checkpoint import as_float32, read_header
from voxlet.native.layers import Array, Caches

_MODULE = "transformer.layers.{}.self_attn"


@dataclass(frozen=True, slots=True)
class NativeVoice:
    """The FlowLM prefix of one voice: per layer K and V, each (G, T, Dh). Not to be changed."""

    keys: tuple[Array, ...]
    values: tuple[Array, ...]

    @property
    def n_positions(self) -> int:
        return self.keys[0].shape[1]

    def to_caches(self, capacity: int) -> Caches:
        """Caches of `capacity` positions holding this prefix (copied), NaN past it."""
        t = self.n_positions
        if capacity < t:
            raise ValueError(f"capacity {capacity} < voice length {t}")
        keys: list[Array] = []
        values: list[Array] = []
        for k, v in zip(self.keys, self.values, strict=True):
            for src, out in ((k, keys), (v, values)):
                a = np.full((src.shape[0], capacity, src.shape[2]), np.nan, np.float32)
                a[:, :t] = src
                out.append(a)
        return Caches(keys, values, t)

    @staticmethod
    def from_caches(caches: Caches) -> NativeVoice:
        t = caches.offset
        return NativeVoice(
            tuple(k[:, :t].copy() for k in caches.keys),
            tuple(v[:, :t].copy() for v in caches.values),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The official layout."""
        out: dict[str, np.ndarray] = {}
        for i, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            name = _MODULE.format(i)
            kv = np.stack([k, v])[:, None]  # (2, 1, G, T, Dh)
            out[f"{name}/cache"] = np.ascontiguousarray(kv.transpose(0, 1, 3, 2, 4))
            out[f"{name}/offset"] = np.array([self.n_positions], np.int64)
            out[f"{name}/pad"] = np.zeros(1, np.int64)
        return out


def end_on_pause(audio: Array) -> Array:
    """Trims trailing quiet, fades the last 20 ms out and appends 80 ms of silence. (N,) -> (M,)."""
    n = audio.shape[0]
    frame = VOICE_PAUSE_FRAME_SAMPLES
    n_frames = max(1, -(-n // frame))
    padded = np.zeros(n_frames * frame, np.float32)
    padded[:n] = audio
    rms = np.sqrt((padded.reshape(n_frames, frame) ** 2).mean(axis=1, dtype=np.float32))
    db = 20 * np.log10(rms + np.float32(1e-12))
    loud = np.flatnonzero(db >= db.max() - np.float32(VOICE_PAUSE_DB))
    end = min(n, (int(loud[-1]) + 1) * frame)
    kept = audio[:end].astype(np.float32, copy=True)
    fade = min(frame, end)
    kept[end - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
    return np.concatenate([kept, np.zeros(VOICE_TAIL_SILENCE_SAMPLES, np.float32)])


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a (small) safetensors file, as numpy arrays (bf16 and fp16 widened to
    float32); a VoiceError naming the file if it is not one."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VoiceError(f"cannot read voice file {path}: {e.strerror or e}") from e
    try:
        entries = read_header(data)
    except ValueError as e:
        raise VoiceError(f"cannot read voice file {path}: not safetensors ({e})") from e
    out = {}
    for key, entry in entries.items():
        raw = entry.array(data).reshape(entry.shape)
        out[key] = raw if entry.dtype.startswith("I") else as_float32(raw, entry.dtype)
    return out


def write_safetensors(arrays: dict[str, np.ndarray], out) -> None:
    """The safetensors layout of float32 and int64 arrays, written to the binary file `out`."""
    names = {np.dtype("<f4"): "F32", np.dtype("<i8"): "I64"}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key in sorted(arrays):
        a = arrays[key]
        header[key] = {
            "dtype": names[a.dtype.newbyteorder("<")],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    out.write(len(text).to_bytes(8, "little") + text)
    for key in sorted(arrays):
        out.write(
            np.ascontiguousarray(arrays[key]).astype(arrays[key].dtype.newbyteorder("<")).tobytes()
        )


@dataclass(frozen=True, slots=True)
class VoiceLayout:
    """What a voice state must fit: the FlowLM's layers, kv heads, head width, d_model."""

    layers: int
    kv_heads: int
    head_dim: int
    d_model: int


def voice_from_arrays(
    arrays: dict[str, np.ndarray],
    layout: VoiceLayout,
    where: str,
    prompt: Callable[[Array], NativeVoice],
) -> NativeVoice:
    """Reads the official (or legacy) layout, checking it fits the model; `prompt(cond)` turns
    third-party `audio_prompt` conditioning (T, D) into a voice."""
    layers, kv_heads, head_dim = layout.layers, layout.kv_heads, layout.head_dim
    d_model = layout.d_model
    if "audio_prompt" in arrays:
        cond = np.array(arrays["audio_prompt"], np.float32)  # its own, writable
        if cond.ndim != 3 or cond.shape[0] != 1 or cond.shape[2] != d_model:
            raise VoiceError(
                f"{where}: audio_prompt has shape {list(cond.shape)}, this model expects "
                f"[1, T, {d_model}]"
            )
        if not np.isfinite(cond).all():
            raise VoiceError(f"{where}: audio_prompt holds NaN or infinite values")
        return prompt(cond[0])
    keys, values = [], []
    for i in range(layers):
        name = _MODULE.format(i)
        cache = arrays.get(f"{name}/cache")
        if cache is None:
            raise VoiceError(f"{where}: not a voice state for this model (no {name}/cache)")
        if f"{name}/offset" in arrays:
            offset = int(np.asarray(arrays[f"{name}/offset"]).reshape(-1)[0])
        elif f"{name}/current_end" in arrays:  # legacy: the step count is the shape
            offset = int(arrays[f"{name}/current_end"].shape[0])
        else:
            raise VoiceError(f"{where}: {name} has neither offset nor current_end")
        if cache.ndim != 5 or cache.shape[:2] != (2, 1) or cache.shape[3:] != (kv_heads, head_dim):
            raise VoiceError(
                f"{where}: {name}/cache has shape {list(cache.shape)}, this model expects "
                f"[2, 1, T, {kv_heads}, {head_dim}] (voice states are model-specific)"
            )
        if not 0 < offset <= cache.shape[2]:
            raise VoiceError(
                f"{where}: {name} offset {offset} outside cache length {cache.shape[2]}"
            )
        kv = np.asarray(cache[:, 0, :offset], np.float32).transpose(0, 2, 1, 3)  # (2, G, T, Dh)
        if not np.isfinite(kv).all():
            raise VoiceError(f"{where}: {name}/cache holds NaN or infinite values")
        keys.append(np.array(kv[0], order="C"))  # copies of their own, not of the file's bytes
        values.append(np.array(kv[1], order="C"))
    extra = [k for k in arrays if k.startswith("transformer.layers.") and _layer(k) >= layers]
    if extra:
        raise VoiceError(f"{where}: has {extra[0]!r}, but this model has {layers} layers")
    return NativeVoice(tuple(keys), tuple(values))


def _layer(key: str) -> int:
    """The layer a `transformer.layers.{i}...` key names; past every layer if it names none."""
    index = key.split(".")[2]
    return int(index) if index.isdecimal() else 1 << 30


def check_prompt_audio(audio: NDArray[np.float32]) -> None:
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise VoiceError("voice prompt audio must be a non-empty mono signal")
    if not np.isfinite(audio).all():
        raise VoiceError("voice prompt audio holds NaN or infinite samples")


def save_voice_file(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Writes a voice's arrays (`NativeVoice.to_arrays`): a regular file through a unique
    temporary file renamed when complete (an interruption leaves the old file or nothing), a
    FIFO or device in place; a VoiceError naming the path if it cannot be written."""
    from voxlet._files import Replaced, plan_output

    try:
        plan = plan_output(path, "voice file")  # "cannot write voice file PATH: ..."
    except OSError as e:
        raise VoiceError(str(e)) from e
    written = plan.temporary if isinstance(plan, Replaced) else plan.target
    try:
        with open(written, "wb") as f:
            write_safetensors(arrays, f)
        if isinstance(plan, Replaced):
            plan.commit()
    except BaseException as e:  # Ctrl-C and signals too: no temporary file left behind
        if isinstance(plan, Replaced):
            plan.discard()
        if not isinstance(e, OSError):
            raise
        raise VoiceError(f"cannot write voice file {path}: {e.strerror or e}") from e
