"""What the FlowLM trains on: every utterance of a corpus encoded once by a trained codec (the
posterior means, raw), the statistics that normalise them, and the text as token ids.

Written into the FlowLM run folder on its first start (`latents.f32` + `latents.json`), each
file by a temporary name renamed when complete, so a killed run redoes only what is missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from voxlet.constants import LATENT_DIM
from voxlet.train.codec import load_run
from voxlet.train.dataset import INFO, Corpus
from voxlet.train.progress import Progress

LATENTS, INDEX = "latents.f32", "latents.json"
_FRAME = 1920


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    split: str
    offset: int  # in frames, into latents.f32
    frames: int


class Latents:
    """The encoded corpus: raw latents by utterance, and their per-channel mean and std over
    the train split."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        index = json.loads((folder / INDEX).read_text("utf-8"))
        self.items = [Item(**d) for d in index["items"]]
        self.mean = np.array(index["mean"], dtype=np.float32)
        self.std = np.array(index["std"], dtype=np.float32)
        self.codec_step = int(index["codec_step"])
        total = sum(i.frames for i in self.items)
        self._data = np.memmap(
            folder / LATENTS, dtype=np.float32, mode="r", shape=(total, LATENT_DIM)
        )

    def split(self, name: str) -> list[Item]:
        return [i for i in self.items if i.split == name]

    def raw(self, item: Item) -> npt.NDArray[np.float32]:
        """(frames, 32) as the codec's encoder gives them."""
        return np.array(self._data[item.offset : item.offset + item.frames])

    def normalised(self, item: Item) -> npt.NDArray[np.float32]:
        return (self.raw(item) - self.mean) / self.std


@torch.no_grad()
def encode_corpus(corpus_dir: str | Path, codec_run: str | Path, folder: str | Path) -> Latents:
    """Encodes every utterance (once: an existing complete index is reused)."""
    folder = Path(folder)
    if (folder / INDEX).exists():
        return Latents(folder)
    corpus = Corpus(corpus_dir)
    model, step = load_run(codec_run)
    items, offset = [], 0
    # train-split statistics, summed as the frames go by (no second read of the file)
    total, squares, count = np.zeros(LATENT_DIM), np.zeros(LATENT_DIM), 0
    tmp = folder / (LATENTS + ".tmp")
    bar = Progress("latents", len(corpus.utterances))
    with tmp.open("wb") as f:
        for n, u in enumerate(corpus.utterances):
            audio = corpus.audio(u)
            audio = np.pad(audio, (0, -len(audio) % _FRAME))
            posterior_mean, _ = model.encode(torch.from_numpy(audio).view(1, 1, -1))
            frames = posterior_mean[0].T.contiguous().numpy()  # (T, 32)
            f.write(frames.astype(np.float32).tobytes())
            if u.split == "train":
                total += frames.sum(axis=0, dtype=np.float64)
                squares += np.square(frames, dtype=np.float64).sum(axis=0)
                count += len(frames)
            items.append(Item(u.id, u.text, u.split, offset, len(frames)))
            offset += len(frames)
            bar.update(n + 1)
    bar.close()
    os.replace(tmp, folder / LATENTS)
    if count == 0:
        raise ValueError(f"{corpus_dir}: no train-split utterance to take latent statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    info = corpus.folder / INFO
    index = {
        "codec": str(codec_run),
        "codec_step": step,
        "corpus": {  # for the model card: where the audio and text came from
            **(json.loads(info.read_text("utf-8")) if info.exists() else {}),
            "train_hours": round(corpus.hours("train"), 3),
            "utterances": len(corpus.utterances),
        },
        "mean": mean.tolist(),
        "std": np.maximum(std, 1e-5).tolist(),
        "items": [asdict(i) for i in items],
    }
    tmp_index = folder / (INDEX + ".tmp")
    tmp_index.write_text(json.dumps(index), encoding="utf-8")
    os.replace(tmp_index, folder / INDEX)
    return Latents(folder)
