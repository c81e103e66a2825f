"""A SentencePiece tokenizer trained on a corpus's train-split text (unigram, the layout's
vocabulary size), for a model of our own: no third-party tokenizer to ship."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path


def train_tokenizer(texts: Iterable[str], path: str | Path, vocab_size: int) -> Path:
    """Trains and writes `path` (by a temporary name, renamed when complete)."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        num_threads=1,  # the same pieces on every machine
        minloglevel=2,
    )
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model.getvalue())
    os.replace(tmp, path)
    return path
