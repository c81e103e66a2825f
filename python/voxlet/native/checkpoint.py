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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from voxlet._native import F32Matrix, first_non_finite
from voxlet.errors import WeightsError

DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "BF16": np.dtype("<u2"),  # bfloat16 as its bits
    "F16": np.dtype("<f2"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
}
FLOAT_DTYPES = ("F32", "BF16", "F16")  # what a checkpoint's weights may be
_MAX_HEADER = 100 << 20  # bytes; safetensors itself refuses headers past 100 MB
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux 5.14+


@dataclass(frozen=True, slots=True)
class Entry:
    """One tensor of a safetensors file: its dtype, shape and byte range in the file."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    def array(self, data: bytes | mmap.mmap) -> np.ndarray:
        """The tensor's values as stored, a view of `data` (bf16 as uint16 bits); a copy
        where the file puts them off their element size's alignment (safetensors allows it,
        the kernels take aligned arrays only)."""
        dtype = DTYPES[self.dtype]
        view = np.frombuffer(data, dtype, (self.end - self.start) // dtype.itemsize, self.start)
        return view if view.flags.aligned else view.copy()


class UnknownDtype(ValueError):
    """A tensor of a dtype this reader does not take."""


def read_header(data: bytes | mmap.mmap) -> dict[str, Entry]:
    """The tensors a safetensors file's bytes hold, every range checked to lie in the file
    and to fit its shape; a ValueError naming the problem (UnknownDtype for a dtype outside
    DTYPES) if the bytes are not such a file."""
    size = len(data)
    if size < 8:
        raise ValueError(f"{size} bytes")
    n = int.from_bytes(data[:8], "little")
    if n > min(_MAX_HEADER, size - 8):
        raise ValueError(f"header of {n} bytes in a file of {size}")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    entries = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            shape = tuple(int(d) for d in shape)
            start, end = int(start), int(end)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"tensor {key!r} has a malformed entry") from e
        if dtype not in DTYPES:
            raise UnknownDtype(f"tensor {key!r} has dtype {dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        if min(shape, default=0) < 0 or not 0 <= start <= end <= size - 8 - n:
            raise ValueError(f"tensor {key!r} lies outside the file")
        if end - start != count * DTYPES[dtype].itemsize:
            raise ValueError(f"tensor {key!r} holds {end - start} bytes for shape {shape}")
        entries[key] = Entry(dtype, shape, 8 + n + start, 8 + n + end)
    return entries


def as_float32(raw: np.ndarray, dtype: str) -> NDArray[np.float32]:
    """Stored float values as float32: F32 itself, bf16 bits and other floats widened (bf16
    and fp16 exactly)."""
    if dtype == "F32":
        return raw
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


class Checkpoint:
    """The tensors of one safetensors file, mapped, checked as they are taken."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with self.path.open("rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
            raise WeightsError(f"cannot read checkpoint {self.path}: {e}") from e
        with contextlib.suppress(OSError, AttributeError):  # Linux 5.14+; else page by page
            # every tensor is read while loading: map the file's cached pages in one call
            self._map.madvise(_MADV_POPULATE_READ)
        self._entries = self._header()
        self._taken: set[str] = set()
        # float matrices reading this file's pages where they lie, by tensor key
        self.read_in_place: dict[str, F32Matrix] = {}
        self.dtypes = sorted({e.dtype for e in self._entries.values()})

    def _header(self) -> dict[str, Entry]:
        try:
            entries = read_header(self._map)
        except UnknownDtype as e:
            raise WeightsError(f"{self.path}: {e}, expected a float type") from e
        except ValueError as e:
            raise WeightsError(f"cannot read checkpoint {self.path} (not safetensors): {e}") from e
        for key, entry in entries.items():
            if entry.dtype not in FLOAT_DTYPES:
                raise WeightsError(
                    f"{self.path}: tensor {key!r} has dtype {entry.dtype}, expected a float type"
                )
        return entries

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def shape(self, key: str) -> tuple[int, ...]:
        return self._entries[key].shape

    def take(self, key: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
        """The tensor `key` as float32 of `shape` (a view of the file where it is float32,
        else a widened copy); a WeightsError if it is missing, of another shape or not finite."""
        dtype, raw = self._checked(key, shape)
        return as_float32(raw, dtype).reshape(shape)

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
        dtype = entry.dtype
        if entry.shape != tuple(shape):
            raise WeightsError(
                f"{self.path}: tensor {key!r} has shape {list(entry.shape)}, "
                f"the model expects {list(shape)}"
            )
        raw = entry.array(self._map)
        bits = raw.view(np.uint32) if dtype == "F32" else raw.view(np.uint16)
        bad = first_non_finite(bits, dtype == "BF16")
        if bad is not None:
            raise WeightsError(
                f"{self.path}: tensor {key!r} holds NaN or infinite values (element {bad})"
            )
        self._taken.add(key)
        return dtype, raw

    def release(self, key: str | None = None) -> None:
        """Drops the file's pages (or those wholly inside tensor `key`'s bytes) from this
        process's memory: what is still read through a view (the text table, say) comes back
        from the page cache page by page, as it is read. Call once the weights a model copies
        have been copied."""
        start, length = 0, len(self._map)
        if key is not None:
            entry = self._entries[key]
            start = -(-entry.start // mmap.PAGESIZE) * mmap.PAGESIZE
            length = entry.end // mmap.PAGESIZE * mmap.PAGESIZE - start
            if length <= 0:
                return
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: no madvise here
            self._map.madvise(mmap.MADV_DONTNEED, start, length)

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
