"""Test helper: rebuilds a SentencePiece unigram model as a Hugging Face tokenizers JSON file."""

from __future__ import annotations

from pathlib import Path

import sentencepiece
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers


def convert(spm_path: Path, out: Path) -> Path:
    sp = sentencepiece.SentencePieceProcessor()
    sp.Load(str(spm_path))
    vocab = [(sp.IdToPiece(i), sp.GetScore(i)) for i in range(sp.GetPieceSize())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=True))
    # SentencePiece: dummy prefix, every space a "▁" (runs kept), digits split one by one.
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Digits(individual_digits=True)
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.save(str(out))
    return out
