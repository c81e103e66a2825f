"""Tokenizers: str -> token ids (np.int64[T]), SentencePiece `.model` or HF tokenizers `.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voxlet.errors import ConfigError

TokenIds = npt.NDArray[np.int64]


class Tokenizer(Protocol):
    """Encodes text without BOS/EOS; pieces and decode serve chunking."""

    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def id_to_piece(self, token_id: int) -> str: ...


class SentencePieceTokenizer:
    def __init__(self, path: Path) -> None:
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor()
        try:
            self._sp.Load(str(path))
        except (OSError, RuntimeError) as e:
            raise ConfigError(f"cannot load SentencePiece model {path}: {e}") from e
        self.vocab_size = int(self._sp.vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self._sp.EncodeAsIds(text))

    def decode(self, ids: list[int]) -> str:
        return str(self._sp.DecodeIds(ids))

    def id_to_piece(self, token_id: int) -> str:
        return str(self._sp.IdToPiece(token_id))


class HFTokenizer:
    def __init__(self, path: Path) -> None:
        try:
            import tokenizers
        except ImportError as e:
            raise ConfigError(
                f"{path} is a Hugging Face tokenizers file; install it with "
                "`pip install voxlet[tokenizers]`"
            ) from e
        try:
            self._tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as e:  # the library raises a bare Exception on bad files
            raise ConfigError(f"cannot load tokenizer {path}: {e}") from e
        self.vocab_size = int(self._tok.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=False))

    def id_to_piece(self, token_id: int) -> str:
        return str(self._tok.id_to_token(token_id))


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Loads a tokenizer by file type: `.json` is HF tokenizers, anything else SentencePiece."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"tokenizer file not found: {p}")
    if p.suffix == ".json":
        return HFTokenizer(p)
    return SentencePieceTokenizer(p)
