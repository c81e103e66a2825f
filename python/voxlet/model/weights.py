"""Checkpoint loading: a local safetensors file -> a ready `PocketTTS` network. Never downloads.

Every key and shape is checked against the model built from the config, and the first problem is
named with the key and both shapes. bf16/fp16 tensors are upcast to float32. The voice-cloning
encoder may be absent or all zeros; the network then works with prebaked voices only. It can
also be released after loading and read back from the file when a voice is first cloned.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voxlet.config import ModelConfig
from voxlet.errors import WeightsError
from voxlet.model.backend import TORCH, Backend
from voxlet.model.network import CLONING_PREFIXES, PocketTTS, is_cloning_key

log = logging.getLogger(__name__)

_FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass(slots=True)
class LoadedNetwork:
    network: PocketTTS
    has_voice_cloning: bool
    source_dtype: str


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(
            f"cannot read checkpoint {path} (corrupt or not safetensors): {e}"
        ) from e


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _shape(t: torch.Tensor | tuple[int, ...]) -> list[int]:
    return list(t.shape) if isinstance(t, torch.Tensor) else list(t)


def first_non_finite(t: torch.Tensor) -> int | None:
    """The flat index of `t`'s first NaN or infinity (None: all finite), read as bits in one
    native pass: a checkpoint's worth in tens of milliseconds, where `torch.isfinite` takes
    most of a second."""
    from voxlet._native import first_non_finite as scan

    flat = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.float32:
        return scan(flat.view(torch.int32).numpy().view(np.uint32))
    return scan(flat.view(torch.int16).numpy().view(np.uint16), t.dtype == torch.bfloat16)


def check_state_dict(
    tensors: dict[str, torch.Tensor], expected: dict[str, torch.Size], where: str
) -> set[str]:
    """Validates keys, shapes and dtypes; returns the cloning keys the checkpoint lacks."""
    missing = [k for k in expected if k not in tensors]
    required_missing = [k for k in missing if not is_cloning_key(k)]
    if required_missing:
        k = required_missing[0]
        more = f" (and {len(required_missing) - 1} more)" if len(required_missing) > 1 else ""
        raise WeightsError(
            f"{where}: missing tensor {k!r} with shape {_shape(expected[k])}{more}; "
            "is this a checkpoint of a different model?"
        )
    unexpected = sorted(k for k in tensors if k not in expected)
    if unexpected:
        k = unexpected[0]
        raise WeightsError(
            f"{where}: unexpected tensor {k!r} with shape {_shape(tensors[k])} "
            f"({len(unexpected)} unexpected in all); the checkpoint does not match this config"
        )
    for k, want in expected.items():
        t = tensors.get(k)
        if t is None:
            continue
        if list(t.shape) != list(want):
            raise WeightsError(
                f"{where}: tensor {k!r} has shape {_shape(t)}, the model expects {_shape(want)}"
            )
        if t.dtype not in _FLOAT_DTYPES:
            raise WeightsError(f"{where}: tensor {k!r} has dtype {t.dtype}, expected a float type")
        bad = first_non_finite(t)
        if bad is not None:
            raise WeightsError(
                f"{where}: tensor {k!r} holds NaN or infinite values (element {bad})"
            )
    return set(missing)


def load_network(cfg: ModelConfig, path: str | Path, backend: Backend = TORCH) -> LoadedNetwork:
    """Builds the network for `cfg` on `backend` and loads `path` into it (strict, float32).
    The caller prepares it (`PocketTTS.prepare`) once its weights are final."""
    path = Path(path)
    tensors = _read_checkpoint(path)
    with torch.device("meta"):
        network = PocketTTS(cfg, backend)
    expected = {k: v.shape for k, v in network.state_dict().items()}
    missing = check_state_dict(tensors, expected, str(path))
    dtypes = {_dtype(t) for t in tensors.values()}
    state = {k: t if t.dtype == torch.float32 else t.float() for k, t in tensors.items()}
    for k in missing:
        state[k] = torch.zeros(expected[k])
    network.load_state_dict(state, strict=True, assign=True)
    network.eval().requires_grad_(False)
    probe = "mimi.encoder.model.0.conv.weight"
    has_cloning = not missing and bool(state[probe].any())
    if not has_cloning:
        log.info("%s has no voice-cloning encoder; only prebaked voices can be used", path)
    return LoadedNetwork(network, has_cloning, "/".join(sorted(dtypes)))


_CLONING_PROBE = "mimi.encoder.model.0.conv.weight"


def release_cloning_weights(network: PocketTTS) -> None:
    """Frees the voice-cloning encoder's weights (they become shapes only); speech from prebaked
    voices does not need them, and `load_cloning_weights` reads them back."""
    for prefix in CLONING_PREFIXES:
        network.get_submodule(prefix.rstrip(".")).to("meta")


def cloning_weights_released(network: PocketTTS) -> bool:
    return network.get_parameter(_CLONING_PROBE).is_meta


def _read_some(path: str | Path, keys: Iterable[str], what: str) -> dict[str, torch.Tensor]:
    """Those of `keys` that `path` holds, as views of its mapping (pages are read on first
    touch); a WeightsError naming `what` if the file cannot be read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in set(keys) & set(f.keys())}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"cannot read {what} from {path}: {e}") from e


def load_cloning_weights(network: PocketTTS, path: str | Path) -> None:
    """Reads only the cloning encoder's tensors from `path` (checked like a full load)."""
    expected = {k: v.shape for k, v in network.state_dict().items() if is_cloning_key(k)}
    views = _read_some(path, expected, "the voice-cloning weights")
    # copied: a view would keep the whole file mapped
    state = {k: t.to(torch.float32, copy=True) for k, t in views.items()}
    missing = check_state_dict(state, expected, str(path))
    if missing:
        k = sorted(missing)[0]
        raise WeightsError(
            f"{path}: the voice-cloning tensor {k!r} is gone since the model was loaded"
        )
    network.load_state_dict(state, strict=False, assign=True)


TEXT_EMBEDDING_KEY = "flow_lm.conditioner.embed.weight"


def map_text_embedding(network: PocketTTS, path: str | Path) -> None:
    """Points the text embedding table at the checkpoint file instead of memory of its own.

    A text chunk reads a few of its rows; mapped, only those pages become resident (16 MB held
    for english otherwise). Kept in the file's dtype: `FlowLM.embed_tokens` converts the rows
    it reads to float32, the same values a float32 copy of the table would give.
    """
    embed = network.flow_lm.conditioner.embed
    table = _read_some(path, [TEXT_EMBEDDING_KEY], "the text embedding").get(TEXT_EMBEDDING_KEY)
    if table is None or table.shape != embed.weight.shape or table.dtype not in _FLOAT_DTYPES:
        found = "missing" if table is None else f"{_dtype(table)} {list(table.shape)}"
        raise WeightsError(
            f"{path}: {TEXT_EMBEDDING_KEY!r} is {found} since the model was loaded, "
            f"expected a float type {list(embed.weight.shape)}"
        )
    embed.weight = nn.Parameter(table, requires_grad=False)


def own_memory(module: nn.Module, keep: Collection[torch.Tensor] = ()) -> None:
    """Copies every parameter and buffer, except those in `keep` (already in memory of their
    own), into memory of its own.

    Checkpoint tensors map the safetensors file; copying what the model uses lets the file
    mapping (every page of which loading, quantization or the huge-page move touched) be
    released, so resident memory holds only what the model uses.
    """
    kept = {id(t) for t in keep}
    with torch.no_grad():
        for sub in module.modules():
            for name, param in list(sub._parameters.items()):
                if param is not None and id(param) not in kept:
                    sub._parameters[name] = nn.Parameter(param.detach().clone(), False)
            for name, buf in list(sub._buffers.items()):
                if buf is not None:
                    sub._buffers[name] = buf.clone()
