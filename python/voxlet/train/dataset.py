"""A training corpus on disk: (24 kHz mono audio, text) pairs, appended as they are made, and
read back as random crops or whole utterances without a Python loop over samples.

Layout of a corpus folder:
- `audio.i16`: every utterance's int16 samples, back to back (memory-mapped when read);
- `manifest.jsonl`: one line per utterance, in audio order: id, text, split, source, offset
  and samples (into `audio.i16`), seconds;
- `info.json`: where the audio and text came from, and their licences.

Writing resumes: a corpus reopened for writing drops a torn last line and any audio past the
last complete one, and `missing()` says which planned ids are still to do.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet.audio import f32_to_i16, read_audio, resample
from voxlet.constants import SAMPLE_RATE_HZ

AUDIO, MANIFEST, INFO = "audio.i16", "manifest.jsonl", "info.json"
_TARGET_RMS, _PEAK = 0.1, 0.95


@dataclass(frozen=True, slots=True)
class Utterance:
    id: str
    text: str
    split: str
    source: str
    offset: int  # in samples, into audio.i16
    samples: int

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE_HZ


def level(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scales to an RMS of -20 dBFS, less where the peak would pass 0.95."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    peak = float(np.max(np.abs(audio)))
    if rms == 0.0:
        raise ValueError("silent audio")
    return (audio * min(_TARGET_RMS / rms, _PEAK / peak)).astype(np.float32)


class CorpusWriter:
    """Appends utterances to a corpus folder (created if needed), resuming where it stopped."""

    def __init__(self, folder: str | Path, info: dict | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.done = _read_manifest(self.folder / MANIFEST)
        end = self.done[-1].offset + self.done[-1].samples if self.done else 0
        # Keep only what the manifest vouches for: a run killed mid-write leaves no half item.
        _truncate_lines(self.folder / MANIFEST, len(self.done))
        self._audio = open(self.folder / AUDIO, "ab")
        self._audio.truncate(end * 2)
        self._audio.seek(end * 2)
        self._manifest = open(self.folder / MANIFEST, "a", encoding="utf-8")
        self._end = end
        info_path = self.folder / INFO
        if info is not None:
            old = json.loads(info_path.read_text()) if info_path.exists() else {}
            info_path.write_text(json.dumps({**old, **info}, indent=2) + "\n")

    @property
    def hours(self) -> float:
        """Audio written so far, this run and earlier ones."""
        return self._end / SAMPLE_RATE_HZ / 3600

    def missing(self, ids: Iterable[str]) -> list[str]:
        have = {u.id for u in self.done}
        return [i for i in ids if i not in have]

    def add(self, id: str, text: str, split: str, source: str, audio: npt.NDArray[np.float32]):
        """Appends one utterance (24 kHz float mono); audio first, then its manifest line."""
        pcm = f32_to_i16(np.ascontiguousarray(audio, dtype=np.float32))
        self._audio.write(pcm.tobytes())
        self._audio.flush()
        u = Utterance(id, text, split, source, self._end, len(pcm))
        self._end += len(pcm)
        self._manifest.write(json.dumps({**asdict(u), "seconds": round(u.seconds, 3)}) + "\n")
        self._manifest.flush()
        self.done.append(u)

    def close(self) -> None:
        for f in (self._audio, self._manifest):
            f.flush()
            os.fsync(f.fileno())
            f.close()

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_manifest(path: Path) -> list[Utterance]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            break  # a torn last line
        d.pop("seconds", None)
        out.append(Utterance(**d))
    return out


def _truncate_lines(path: Path, keep: int) -> None:
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    data = b"".join(line + b"\n" for line in lines[:keep])
    if len(data) != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(len(data))


def folder_pairs(folder: str | Path) -> Iterator[tuple[str, str, Path]]:
    """(id, text, wav path) from an LJSpeech-style `metadata.csv` (id|text[|normalised text],
    audio in `wavs/ID.wav`) or from `NAME.wav` + `NAME.txt` pairs."""
    root = Path(folder)
    meta = root / "metadata.csv"
    if meta.is_file():
        for line in meta.read_text(encoding="utf-8").splitlines():
            fields = line.split("|")
            if len(fields) >= 2 and fields[0]:
                yield fields[0], fields[-1].strip(), root / "wavs" / f"{fields[0]}.wav"
        return
    for wav in sorted(root.rglob("*.wav")):
        txt = wav.with_suffix(".txt")
        if txt.is_file():
            yield str(wav.relative_to(root).with_suffix("")), txt.read_text("utf-8").strip(), wav


def load_mono_24k(path: Path) -> npt.NDArray[np.float32]:
    audio, rate = read_audio(path)
    mono = audio.mean(axis=1).astype(np.float32) if audio.shape[1] > 1 else audio[:, 0]
    return resample(mono, rate, SAMPLE_RATE_HZ) if rate != SAMPLE_RATE_HZ else mono


class Corpus:
    """A corpus folder, read only: utterances by split, crops and whole items as float32."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.refresh()
        if not self.utterances:
            raise FileNotFoundError(f"{self.folder}: no corpus here (no {MANIFEST} entries)")

    def refresh(self) -> None:
        """Rereads the manifest: a corpus still being written has grown."""
        self.utterances = _read_manifest(self.folder / MANIFEST)
        end = self.utterances[-1].offset + self.utterances[-1].samples if self.utterances else 0
        self._audio = np.memmap(self.folder / AUDIO, dtype=np.int16, mode="r", shape=(end,))

    def split(self, name: str) -> list[Utterance]:
        return [u for u in self.utterances if u.split == name]

    def hours(self, name: str | None = None) -> float:
        items = self.utterances if name is None else self.split(name)
        return sum(u.samples for u in items) / SAMPLE_RATE_HZ / 3600

    def audio(self, u: Utterance) -> npt.NDArray[np.float32]:
        return self._audio[u.offset : u.offset + u.samples].astype(np.float32) / 32768.0

    def crops(
        self, items: list[Utterance], batch: int, samples: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        """(batch, samples) random crops, utterances drawn by length; a shorter utterance is
        zero-padded at the end."""
        lengths = np.array([u.samples for u in items], dtype=np.float64)
        picks = rng.choice(len(items), size=batch, p=lengths / lengths.sum())
        out = np.zeros((batch, samples), dtype=np.float32)
        for row, i in enumerate(picks):
            u = items[i]
            start = int(rng.integers(0, max(u.samples - samples, 0) + 1))
            n = min(samples, u.samples - start)
            out[row, :n] = self._audio[u.offset + start : u.offset + start + n]
        return out / 32768.0
