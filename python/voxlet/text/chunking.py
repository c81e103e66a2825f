"""Chunking: prepared text -> chunks of at most `max_tokens` tokens, each re-prepared. Pure.

Sentences end after a run of `. ! ... ?` tokens (a `.` between two digits does not end one).
A sentence longer than `max_tokens` is split after `, ; :` tokens, and a piece still too long is
split at word starts, and a single word longer than the budget every `max_tokens` tokens, so no
chunk exceeds the budget. Pieces are then packed greedily. No word is lost: the chunks' raw
texts joined by spaces give back the words of the prepared text, in order (a word cut at the
budget as its pieces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxlet.text.prepare import TextRules, count_words, prepare_text
from voxlet.text.tokenizer import TokenIds, Tokenizer
from voxlet.text.words import WordMark

_SENTENCE_ENDS = ".!...?"
_CLAUSE_ENDS = ",;:"
_WORD_START = "▁"


@dataclass(frozen=True, slots=True)
class TextChunk:
    """One unit of generation.

    Attributes:
        text: the prepared chunk, as the model is prompted with it.
        raw: the chunk's slice of the whole prepared text, before re-preparation.
        token_ids: `text` tokenized, np.int64[T].
        frames_after_eos_guess: 3 for chunks of at most 4 words, else 1 (reference rule).
        words: the written words it says, where word timings were asked for
            (`voxlet.text.words`).
    """

    text: str
    raw: str
    token_ids: TokenIds
    frames_after_eos_guess: int
    words: tuple[WordMark, ...] = ()


def _marker_ids(tokenizer: Tokenizer, marks: str) -> frozenset[int]:
    """Ids of punctuation marks, without the word-boundary piece the tokenizer puts first."""
    ids = tokenizer.encode(marks)
    if ids and tokenizer.id_to_piece(ids[0]) == _WORD_START:
        ids = ids[1:]
    return frozenset(ids)


def _split_after(ids: list[int], is_end: list[bool]) -> list[list[int]]:
    """Splits before the first token that follows a run of end tokens."""
    pieces: list[list[int]] = [[]]
    for i, tok in enumerate(ids):
        if i > 0 and is_end[i - 1] and not is_end[i]:
            pieces.append([])
        pieces[-1].append(tok)
    return [p for p in pieces if p]


def _sentences(ids: list[int], tokenizer: Tokenizer, ends: frozenset[int]) -> list[list[int]]:
    pieces = [tokenizer.id_to_piece(t) for t in ids]
    is_end = []
    for i, tok in enumerate(ids):
        end = tok in ends
        if end and pieces[i] == "." and 0 < i < len(ids) - 1:
            before, after = pieces[i - 1], pieces[i + 1]
            if before[-1:].isdigit() and after[:1].isdigit():
                end = False  # a decimal point, as in 3.50
        is_end.append(end)
    return _split_after(ids, is_end)


def _pack(pieces: list[list[int]], max_tokens: int) -> list[list[int]]:
    """Greedily joins consecutive pieces while the total stays within max_tokens."""
    chunks: list[list[int]] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(piece) <= max_tokens:
            chunks[-1] = chunks[-1] + piece
        else:
            chunks.append(list(piece))
    return chunks


def _pack_pieces(pieces: list[list[int]], max_tokens: int) -> list[list[list[int]]]:
    """As `_pack`, keeping the pieces each chunk is made of."""
    groups: list[list[list[int]]] = []
    size = 0
    for piece in pieces:
        if groups and size + len(piece) <= max_tokens:
            groups[-1].append(piece)
            size += len(piece)
        else:
            groups.append([piece])
            size = len(piece)
    return groups


def _fit(sentence: list[int], tokenizer: Tokenizer, clause_ends: frozenset[int], max_tokens: int):
    """Splits an over-long sentence on clause marks, then at word starts, then (one word
    past the budget) every max_tokens tokens."""
    if len(sentence) <= max_tokens:
        return [sentence]
    out: list[list[int]] = []
    clauses = _split_after(sentence, [t in clause_ends for t in sentence])
    for clause in _pack(clauses, max_tokens):
        if len(clause) <= max_tokens:
            out.append(clause)
            continue
        starts = [
            i == 0 or tokenizer.id_to_piece(t).startswith(_WORD_START) for i, t in enumerate(clause)
        ]
        words = _split_after(
            clause, [i + 1 < len(starts) and starts[i + 1] for i in range(len(starts))]
        )
        for piece in _pack(words, max_tokens):
            # a single word past the budget (a 100,000-letter "word") is cut every max_tokens
            # tokens: no chunk, and so no prefill, exceeds the budget
            out.extend(piece[i : i + max_tokens] for i in range(0, len(piece), max_tokens))
    return out


def split_into_chunks(
    text: str,
    tokenizer: Tokenizer,
    rules: TextRules,
    max_tokens: int = 50,
    continuation: bool = False,
) -> list[TextChunk]:
    """Prepares `text`, splits it into chunks of at most `max_tokens` tokens, re-prepares each.
    `continuation`: `text` continues a text already chunked (see `prepare_text`), so it splits
    as it would inside the whole.

    Raises:
        TextError: the text is empty after preparation.
    """
    prepared = prepare_text(text, rules, continuation)
    return _split(prepared, tokenizer, rules, max_tokens, max_tokens)


def _split(
    prepared: str, tokenizer: Tokenizer, rules: TextRules, budget: int, limit: int
) -> list[TextChunk]:
    """Chunks of prepared text cut at `budget` tokens. Re-preparing a chunk (a capital, a full
    stop, padding) can add tokens: a chunk that then exceeds `limit` is split again, with the
    budget lowered by its excess, so none does while the budget allows."""
    ids = tokenizer.encode(prepared)
    ends = _marker_ids(tokenizer, _SENTENCE_ENDS)
    clause_ends = _marker_ids(tokenizer, _CLAUSE_ENDS)
    pieces: list[list[int]] = []
    for sentence in _sentences(ids, tokenizer, ends):
        pieces.extend(_fit(sentence, tokenizer, clause_ends, budget))
    chunks = []
    for group in _pack_pieces(pieces, budget):
        # each piece decoded on its own, joined by spaces (the reference's join: a sentence
        # that ends inside a word, as in `“Hi?”`, is followed by a space)
        raw = " ".join(t for t in (tokenizer.decode(p).strip() for p in group) if t)
        if not raw:
            continue
        chunk_text = prepare_text(raw, rules)
        chunk_ids = tokenizer.encode(chunk_text)
        if len(chunk_ids) > limit and budget > 1:
            smaller = max(1, min(budget - 1, budget - (len(chunk_ids) - limit)))
            chunks.extend(_split(raw, tokenizer, rules, smaller, limit))
            continue
        chunks.append(
            TextChunk(
                text=chunk_text,
                raw=raw,
                token_ids=np.asarray(chunk_ids, dtype=np.int64),
                frames_after_eos_guess=3 if count_words(chunk_text) <= 4 else 1,
            )
        )
    return chunks
