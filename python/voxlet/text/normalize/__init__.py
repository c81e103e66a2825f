"""Text normalisation: written text -> the words a careful reader says. Pure, deterministic.

    >>> normalize("Prof. Lee paid $4.50 at 7:45 on 1999-03-14.")
    'Professor Lee paid four dollars and fifty cents at seven forty-five on March fourteenth,
    nineteen ninety-nine.'

English only for now: text in any other language passes through unchanged. `normalize_aligned`
also says which span of the output each rewritten span of the input became (word timings map
output words back to the words the user wrote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxlet.errors import TextError
from voxlet.text.normalize import english

_ENGLISH = re.compile(r"(?i)en(?:[-_][a-z]{2,3})?|english")


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Input text[source_start:source_end] was said as output[output_start:output_end]."""

    source_start: int
    source_end: int
    output_start: int
    output_end: int


def supports(lang: str) -> bool:
    """True when voxlet has normalisation rules for `lang` ("en", "en-US", "english")."""
    return _ENGLISH.fullmatch(lang) is not None


def normalize(text: str, lang: str = "en", context: str = "") -> str:
    """Written text as the words a reader says ("$5" -> "five dollars"); unchanged for a
    language without rules. `context`: the text just before `text` (not returned), for rules
    that look at the word before ("Baker St." is a street)."""
    return normalize_aligned(text, lang, context)[0]


def normalize_aligned(text: str, lang: str = "en", context: str = "") -> tuple[str, list[Rewrite]]:
    """As `normalize`, with every rewritten span (in order; text between them is copied)."""
    if not isinstance(text, str):
        raise TextError(f"text: must be a str, got {type(text).__name__}")
    if not isinstance(lang, str):
        raise TextError(f"lang: must be a language code such as 'en', got {lang!r}")
    if not supports(lang) or not _may_rewrite(text):
        return text, []
    return _scan(context + text, len(context))


_TRIGGERS = re.compile(r"[\d\W]|[A-Z]{2}|\b(?:vs|aka|etc|OK|Ok)\b")


def _may_rewrite(text: str) -> bool:
    """Cheap test: plain lowercase words with spaces and sentence punctuation need nothing."""
    return _TRIGGERS.search(re.sub(r"[\s,;'’\"!?-]+", " ", text).replace(" ", "")) is not None


def _say(m: re.Match[str], ctx: english.Context) -> tuple[str, int] | None:
    """The first rule, from the one that matched on, that accepts the text at m.start()."""
    name = m.lastgroup
    assert name is not None
    first = english.ORDER.index(name)
    _, handler = english.SEPARATE[name]
    said = handler(m, ctx)
    if said is not None:
        return said, m.end()
    for other in english.ORDER[first + 1 :]:
        regex, handler = english.SEPARATE[other]
        alt = regex.match(ctx.text, m.start())
        if alt is not None and alt.end() > alt.start():
            said = handler(alt, ctx)
            if said is not None:
                return said, alt.end()
    return None


def _scan(text: str, start_at: int = 0) -> tuple[str, list[Rewrite]]:
    """Rewrites text[start_at:], the text before it seen as context only."""
    ctx = english.Context(text, english.is_shouting(text[start_at:]))
    out: list[str] = []
    length = 0
    rewrites: list[Rewrite] = []
    pos = start_at
    while pos < len(text):
        m = english.COMBINED.search(text, pos)
        if m is None:
            break
        start = m.start()
        if start > pos:
            out.append(text[pos:start])
            length += start - pos
        found = _say(m, ctx) if m.end() > start else None
        if found is None:  # no rule takes it here: copy one character, look again after it
            out.append(text[start])
            length += 1
            pos = start + 1
            continue
        said, end = found
        if said and out and out[-1][-1:].isalnum() and said[0].isalnum():
            out.append(" ")
            length += 1
        out.append(said)
        rewrites.append(Rewrite(start - start_at, end - start_at, length, length + len(said)))
        length += len(said)
        if said and end < len(text) and said[-1].isalnum() and text[end].isalnum():
            out.append(" ")
            length += 1
        pos = end
    out.append(text[pos:])
    return "".join(out), rewrites
