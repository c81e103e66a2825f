"""Text preparation: raw str -> the str the model is prompted with (reference 4.0.1 rules). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voxlet.errors import TextError

_TERMINAL = (".", "!", "?", "…")
_SOFT_END = (",", ";", ":", "-", "–", "—")
_CLOSERS = "\"'”’)]»"
_PUNCT_AFTER_END = re.compile(r"([.!?…])[,;:]")
_PAD = " " * 8
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class TextRules:
    """Per-model text rules, taken from the model config."""

    replace_characters: dict[str, str] = field(default_factory=dict)
    remove_semicolons: bool = False
    pad_with_spaces_for_short_inputs: bool = False


def count_words(text: str) -> int:
    return len(text.split())


def prepare_text(text: str, rules: TextRules, continuation: bool = False) -> str:
    """Applies the reference's preparation rules; raises TextError on empty text and on text
    that is not valid Unicode (a lone surrogate, from bytes decoded with surrogateescape, say).

    `continuation`: the text continues one already prepared (text still being written), so
    it gets neither the capital nor the padding that only a text's start gets."""
    lone = _SURROGATE.search(text)
    if lone is not None:
        raise TextError(
            f"text: invalid character U+{ord(lone.group()):04X} at position {lone.start()} "
            "(a lone surrogate: not Unicode text)"
        )
    text = text.strip()
    for old, new in rules.replace_characters.items():
        text = text.replace(old, new)
    text = re.sub(r"\s+", " ", text)
    text = _PUNCT_AFTER_END.sub(r"\1", text).strip()
    if not text:
        raise TextError("Text prompt cannot be empty")
    # Newlines are gone after the whitespace collapse; the single pass of "  " -> " " the
    # reference then makes is a no-op here for the same reason.
    if rules.remove_semicolons:
        text = text.replace(";", ",")
    if not text[0].isupper() and not continuation:
        text = text[0].upper() + text[1:]
    text = _fix_terminal_punctuation(text)
    if rules.pad_with_spaces_for_short_inputs and count_words(text) < 5 and not continuation:
        text = _PAD + text
    return text


def _fix_terminal_punctuation(text: str) -> str:
    """Ends the text with terminal punctuation, looking past closing quotes and brackets."""
    core = text.rstrip(_CLOSERS + " ")
    closers = text[len(core) :]
    if not core or core.endswith(_TERMINAL):
        return text
    if core.endswith(_SOFT_END):
        return core[:-1].rstrip() + "." + closers
    return text + "."
