"""Text stage: str -> prepared str -> chunks -> token ids. Imports nothing downstream."""

from voxlet.text.chunking import TextChunk, split_into_chunks
from voxlet.text.prepare import TextRules, count_words, prepare_text
from voxlet.text.tokenizer import Tokenizer, load_tokenizer

__all__ = [
    "TextChunk",
    "TextRules",
    "Tokenizer",
    "count_words",
    "load_tokenizer",
    "prepare_text",
    "split_into_chunks",
]
