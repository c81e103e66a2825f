"""`voxlet train data`: builds a corpus folder from the teacher or from a folder of recordings.

Both resume: rerun the same command after an interruption and it carries on with the items
still missing (the plan, `sentences.jsonl`, is written once and reused).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from voxlet.train import corpus
from voxlet.train.dataset import CorpusWriter, folder_pairs, level, load_mono_24k
from voxlet.train.progress import Progress

log = logging.getLogger("voxlet.train")
PLAN = "sentences.jsonl"


def plan(folder: Path, hours: float, seed: int, wordnet_dir: Path | None, files: list[Path]):
    """The sentences to speak: those `sentences.jsonl` lists (an earlier run's plan), and new
    ones after them where `hours` asks for more than it holds."""
    path = folder / PLAN
    planned: list[corpus.Sentence] = []
    if path.exists():
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        planned = [corpus.Sentence(r["text"], r["source"]) for r in rows]
    have = sum(corpus.estimated_seconds(s.text) for s in planned) / 3600
    if planned and have >= hours * 0.99:
        return planned
    keys = {s.key for s in planned}
    more = [s for s in corpus.build(hours, seed, wordnet_dir, files) if s.key not in keys]
    budget = (hours - have) * 3600
    for s in more:
        if budget <= 0:
            break
        planned.append(s)
        budget -= corpus.estimated_seconds(s.text)
    sentences = planned
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i, s in enumerate(sentences):
            f.write(json.dumps({"id": f"s{i:06d}", "text": s.text, "source": s.source}) + "\n")
    tmp.replace(path)
    return sentences


def from_teacher(
    folder: Path,
    hours: float,
    seed: int = 0,
    wordnet_dir: Path | None = corpus.WORDNET_DIR,
    files: list[Path] | None = None,
    limit: int | None = None,
    split: str | None = None,
) -> CorpusWriter:
    """Speaks the planned sentences with the teacher into `folder` (at most `limit` this run;
    only those of one `split` if given: the held-out test list first, say)."""
    from voxlet.train.teacher import TEACHER, PiperTeacher

    sentences = plan(folder, hours, seed, wordnet_dir, files or [])
    ids = [f"s{i:06d}" for i in range(len(sentences))]
    info = {
        "audio": TEACHER,
        "text": [corpus.WORDNET_LICENCE, "templates: voxlet (MIT)"]
        + [f"file {f}" for f in files or []],
        "hours_planned": hours,
        "seed": seed,
    }
    writer = CorpusWriter(folder, info)
    todo = set(writer.missing(ids))
    if split is not None:
        todo = {i for i, s in zip(ids, sentences, strict=True) if i in todo and s.split == split}
    if limit is not None:
        todo = set(sorted(todo)[:limit])
    teacher = PiperTeacher()
    bar = Progress("data", len(ids), len(ids) - len(writer.missing(ids)))
    try:
        for id, s in zip(ids, sentences, strict=True):
            if id not in todo:
                continue
            writer.add(id, s.text, s.split, s.source, level(teacher.speak(s.text)))
            bar.update(len(writer.done), hours=writer.hours)
    finally:
        bar.close()
        writer.close()
    return writer


def from_folder(source: Path, folder: Path) -> CorpusWriter:
    """Copies (id, text, audio) pairs from a folder of recordings, resampled to 24 kHz mono."""
    pairs = list(folder_pairs(source))
    if not pairs:
        raise FileNotFoundError(f"{source}: no metadata.csv and no NAME.wav + NAME.txt pairs")
    writer = CorpusWriter(folder, {"audio": f"folder {source}", "text": f"folder {source}"})
    todo = set(writer.missing(p[0] for p in pairs))
    try:
        for id, text, wav in pairs:
            if id not in todo:
                continue
            s = corpus.Sentence(text, f"folder:{source.name}")
            writer.add(id, text, s.split, s.source, level(load_mono_24k(wav)))
    finally:
        writer.close()
    return writer
