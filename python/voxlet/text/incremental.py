"""Text that is still being written: where the received text may be cut. Pure.

`SentenceSplitter` takes fragments as they come and hands out complete sentences of the raw
text, whitespace and markup kept, so that joined they give back exactly what was received.
A sentence is complete at `? ! …` and at a `.` that the normaliser leaves standing, so the
cut falls where chunking the whole text would split: not after a title ("Dr. Lee"), nor an
abbreviation or initialism followed by a small letter ("e.g. apples"), nor "No." before a
number; a `.` at the very end of what was received waits for what follows when that decides
("3." may become "3.5"). Never inside a markup tag; a blank line ends one too. For a long
sentence, `take_clause` cuts after its last `, ; :` once enough words have come.
"""

from __future__ import annotations

import re

from voxlet.text.markup import PARAGRAPH_BREAK, TAG_START
from voxlet.text.normalize import lexicon_en as lex

# A sentence end: terminal marks, closing quotes or brackets, then whitespace or the end.
_END = re.compile(rf"[.!?…]+[\"'”’)\]»]*(?=\s|$)|{PARAGRAPH_BREAK.pattern}")
_CLAUSE = re.compile(r"[,;:—–][\"'”’)\]]*\s")
# How the normaliser treats a word before a "." (so the cut falls where whole-text chunking
# splits, which is wherever a "." is left after normalising):
_TITLES = frozenset(lex.TITLES)  # "Dr." is read as a word: never a sentence end
_ABBREVIATIONS = frozenset(a[:-1] for a in lex.ABBREVIATIONS if a.endswith("."))
_BEFORE_NUMBER = frozenset(
    [*(a[:-1] for a in lex.BEFORE_NUMBER if a.endswith(".")), *lex.MONTH_ABBREVIATIONS]
)
CLAUSE_WORDS = 12  # a sentence still open after this many words may be cut at a clause mark


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip("\"'“‘([")


def _open_tag(text: str, pos: int) -> bool:
    """True when `pos` lies inside a `<tag ...` not yet closed by `>`."""
    opened = text.rfind("<", 0, pos)
    return (
        opened != -1
        and text.find(">", opened, pos) == -1
        and TAG_START.match(text, opened) is not None
    )


def _is_sentence_end(text: str, m: re.Match[str], final: bool) -> bool:
    if _open_tag(text, m.start()):
        return False
    mark = m.group()
    if mark.startswith("\n") or not mark.startswith(".") or mark.startswith(".."):
        return True
    stem = _word_before(text, m.start()).rstrip(".")
    after = text[m.end() :].lstrip()
    if not after and not final:  # what follows decides: wait for it
        return not (stem[-1:].isdigit() or _needs_next(stem))
    if stem in _TITLES:
        return not after  # "Dr. Lee": a title; only the text's very end ends here
    if (
        stem in _ABBREVIATIONS
        or stem.lower() in _ABBREVIATIONS
        or ("." in stem and stem.replace(".", "").isalpha())
    ):
        return not after or after[0].isupper()  # "etc. The" ends, "e.g. apples" does not
    if stem in _BEFORE_NUMBER:
        return not after[:1].isdigit()  # "No. 5" is read "number five"
    return True


def _needs_next(stem: str) -> bool:
    return (
        len(stem) == 1  # "e." may be "e.g.", "U." "U.S."
        or stem in _TITLES
        or stem in _ABBREVIATIONS
        or stem.lower() in _ABBREVIATIONS
        or stem in _BEFORE_NUMBER
        or "." in stem
    )


class SentenceSplitter:
    """Received text -> complete sentences (raw) and the open rest."""

    def __init__(self) -> None:
        self._text = ""
        self._closed = False

    def feed(self, fragment: str) -> None:
        self._text += fragment

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> str:
        """Received text not yet handed out."""
        return self._text

    def sentences(self) -> list[str]:
        """Takes every complete sentence received so far (all of the text once closed)."""
        out: list[str] = []
        start = 0
        for m in _END.finditer(self._text):
            if m.end() <= start or not _is_sentence_end(self._text, m, self._closed):
                continue
            end = m.end()
            # the whitespace after a sentence goes with it
            while end < len(self._text) and self._text[end].isspace():
                end += 1
            if not self._text[start:end].strip():
                continue  # only whitespace: it stays at the front of the next sentence
            out.append(self._text[start:end])
            start = end
        if self._closed and start < len(self._text):
            out.append(self._text[start:])
            start = len(self._text)
        self._text = self._text[start:]
        return [s for s in out if s.strip()]

    def take_clause(self, min_words: int = CLAUSE_WORDS) -> str | None:
        """The open sentence up to its last clause mark, once it has `min_words` words."""
        text = self._text
        if len(text.split()) < min_words:
            return None
        cut = None
        for m in _CLAUSE.finditer(text):
            if not _open_tag(text, m.start()) and len(text[: m.start()].split()) >= min_words // 2:
                cut = m.end()
        if cut is None:
            return None
        self._text = text[cut:]
        return text[:cut]
