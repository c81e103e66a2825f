"""A safetensors checkpoint read with numpy alone: the file is mapped, each tensor a view of it.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the bytes. numpy has no bfloat16, so `take` widens bf16 (and fp16)
to float32: bf16 -> f32 is exact (the 16 bits become the top half of the float); `take_stored`
leaves bf16 as its bits, which the native float kernels read in place at half the bytes. Every read
checks the key, its shape and that every value is finite, naming the key and both shapes on a
mismatch; `unexpected` names what the checkpoint holds that nothing read.
"""

from __future__ import annotations

import contextlib
import json
import mmap
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from voxlet._native import first_non_finite
from voxlet.errors import WeightsError

_DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "BF16": np.dtype("<u2"),
    "F16": np.dtype("<f2"),
}
_MAX_HEADER = 100 << 20  # bytes; safetensors itself refuses headers past 100 MB


class Checkpoint:
    """The tensors of one safetensors file, mapped, checked as they are taken."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with self.path.open("rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
            raise WeightsError(f"cannot read checkpoint {self.path}: {e}") from e
        self._entries = self._header()
        self._taken: set[str] = set()
        self.dtypes = sorted({e[0] for e in self._entries.values()})

    def _bad(self, problem: str) -> WeightsError:
        return WeightsError(f"cannot read checkpoint {self.path} (not safetensors): {problem}")

    def _header(self) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
        size = len(self._map)
        if size < 8:
            raise self._bad(f"{size} bytes")
        n = int.from_bytes(self._map[:8], "little")
        if n > min(_MAX_HEADER, size - 8):
            raise self._bad(f"header of {n} bytes in a file of {size}")
        try:
            header = json.loads(self._map[8 : 8 + n])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._bad(f"header is not JSON ({e})") from e
        if not isinstance(header, dict):
            raise self._bad("header is not a JSON object")
        entries = {}
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            try:
                dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
                shape = tuple(int(d) for d in shape)
                start, end = int(start), int(end)
            except (KeyError, TypeError, ValueError) as e:
                raise self._bad(f"tensor {key!r} has a malformed entry") from e
            if dtype not in _DTYPES:
                raise WeightsError(
                    f"{self.path}: tensor {key!r} has dtype {dtype}, expected a float type"
                )
            count = int(np.prod(shape, dtype=np.int64))
            if min(shape, default=0) < 0 or not 0 <= start <= end <= size - 8 - n:
                raise self._bad(f"tensor {key!r} lies outside the file")
            if end - start != count * _DTYPES[dtype].itemsize:
                raise self._bad(f"tensor {key!r} holds {end - start} bytes for shape {shape}")
            entries[key] = (dtype, shape, 8 + n + start, 8 + n + end)
        return entries

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def shape(self, key: str) -> tuple[int, ...]:
        return self._entries[key][1]

    def take(self, key: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
        """The tensor `key` as float32 of `shape` (a view of the file where it is float32,
        else a widened copy); a WeightsError if it is missing, of another shape or not finite."""
        dtype, raw = self._checked(key, shape)
        if dtype == "F32":
            return raw.reshape(shape)
        if dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
        return raw.astype(np.float32).reshape(shape)

    def take_stored(
        self, key: str, shape: tuple[int, ...]
    ) -> NDArray[np.float32] | NDArray[np.uint16]:
        """As `take`, but a bfloat16 tensor stays as stored: a view of its bits (uint16), which
        the native float kernels read as they are (fp16 is widened)."""
        dtype, raw = self._checked(key, shape)
        if dtype == "BF16":
            return raw.reshape(shape)
        return self.take(key, shape)

    def _checked(self, key: str, shape: tuple[int, ...]) -> tuple[str, np.ndarray]:
        entry = self._entries.get(key)
        if entry is None:
            raise WeightsError(
                f"{self.path}: missing tensor {key!r} with shape {list(shape)}; "
                "is this a checkpoint of a different model?"
            )
        dtype, have, start, end = entry
        if have != tuple(shape):
            raise WeightsError(
                f"{self.path}: tensor {key!r} has shape {list(have)}, "
                f"the model expects {list(shape)}"
            )
        raw = np.frombuffer(
            self._map, _DTYPES[dtype], (end - start) // _DTYPES[dtype].itemsize, start
        )
        bits = raw.view(np.uint32) if dtype == "F32" else raw.view(np.uint16)
        bad = first_non_finite(bits, dtype == "BF16")
        if bad is not None:
            raise WeightsError(
                f"{self.path}: tensor {key!r} holds NaN or infinite values (element {bad})"
            )
        self._taken.add(key)
        return dtype, raw

    def release(self) -> None:
        """Drops the file's pages from this process's memory: what is still read through a view
        (the text table, say) comes back from the page cache page by page, as it is read. Call
        once the weights a model copies have been copied."""
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: no madvise here
            self._map.madvise(mmap.MADV_DONTNEED)

    def unexpected(self, optional_prefixes: tuple[str, ...] = ()) -> None:
        """A WeightsError naming the first tensor nothing took (those under `optional_prefixes`,
        parts the caller chose not to build, excepted)."""
        left = [
            k for k in self.keys() if k not in self._taken and not k.startswith(optional_prefixes)
        ]
        if left:
            raise WeightsError(
                f"{self.path}: unexpected tensor {left[0]!r} with shape "
                f"{list(self.shape(left[0]))} ({len(left)} unexpected in all); "
                "the checkpoint does not match this config"
            )
