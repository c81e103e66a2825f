"""The markup voxlet reads: pauses. Text with tags -> text pieces and `Pause`s. Pure.

Accepted (an SSML subset):
- `<break time="500ms"/>`, `<break time="1.5s"/>`: silence of exactly that length (at most
  MAX_BREAK_S), wherever it stands; the text on either side is spoken as separate chunks.
- `<break strength="none|x-weak|weak|medium|strong|x-strong"/>` and a bare `<break/>`
  (medium): 0, 0.1, 0.25, 0.5, 0.75 and 1 s.
- `<speak>` ... `</speak>` around the text (ignored), `<p>` ... `</p>` and blank lines:
  paragraphs, with PARAGRAPH_PAUSE_S of silence between them.

Any other tag, an attribute it does not know, a bad time or an unclosed `<...` is a TextError
naming it and its position: markup is never read aloud. A `<` that does not open a tag (`x < 5`,
`<3`) is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxlet.errors import TextError

MAX_BREAK_S = 30.0
PARAGRAPH_PAUSE_S = 0.4
_STRENGTHS = {
    "none": 0.0,
    "x-weak": 0.1,
    "weak": 0.25,
    "medium": 0.5,
    "strong": 0.75,
    "x-strong": 1.0,
}
TAG_START = re.compile(r"<(?=\s*/?\s*[A-Za-z])")  # a `<` that opens a tag
_TAG = re.compile(
    r"<\s*(?P<close>/)?\s*(?P<name>[A-Za-z][\w:-]*)(?P<attrs>[^<>]*?)(?P<self>/)?\s*>"
)
_ATTR = re.compile(r"\s*(?P<key>[A-Za-z][\w:-]*)\s*=\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)')")
_TIME = re.compile(r"\s*(?P<value>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s)\s*")
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")  # a blank line and what follows


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence between two pieces of speech. `paragraph`: from a paragraph boundary, so it
    is dropped at the very start and end of the text and runs of them count once."""

    seconds: float
    paragraph: bool = False

    @property
    def samples(self) -> int:
        """Its length at 24 kHz."""
        return round(self.seconds * 24_000)


Piece = str | Pause
PARAGRAPH_PAUSE = Pause(PARAGRAPH_PAUSE_S, paragraph=True)


def _attributes(raw: str, where: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(raw.rstrip()):
        m = _ATTR.match(raw, pos)
        if m is None:
            raise TextError(f"text: cannot read the attributes of {where}: {raw.strip()!r}")
        attrs[m["key"].lower()] = m["dq"] if m["dq"] is not None else m["sq"]
        pos = m.end()
    return attrs


def _break(attrs: dict[str, str], where: str) -> Pause:
    unknown = sorted(set(attrs) - {"time", "strength"})
    if unknown:
        raise TextError(f"text: {where} has an unknown attribute {unknown[0]!r} (time, strength)")
    if "time" in attrs:
        m = _TIME.fullmatch(attrs["time"])
        if m is None:
            raise TextError(
                f'text: {where}: time must look like "500ms" or "1.5s", got {attrs["time"]!r}'
            )
        seconds = float(m["value"]) / (1000 if m["unit"] == "ms" else 1)
        if seconds > MAX_BREAK_S:
            raise TextError(f"text: {where}: time {attrs['time']} is over {MAX_BREAK_S:g}s")
        return Pause(seconds)
    strength = attrs.get("strength", "medium")
    if strength not in _STRENGTHS:
        raise TextError(
            f"text: {where}: strength must be one of {', '.join(_STRENGTHS)}, got {strength!r}"
        )
    return Pause(_STRENGTHS[strength])


def _paragraphs(text: str) -> list[Piece]:
    pieces: list[Piece] = []
    for i, part in enumerate(PARAGRAPH_BREAK.split(text)):
        if i:
            pieces.append(PARAGRAPH_PAUSE)
        pieces.append(part)
    return pieces


def parse(text: str) -> list[Piece]:
    """Text pieces (with their whitespace) and pauses, in order; consecutive pauses add up and
    empty pieces are dropped."""
    raw: list[Piece] = []
    pos = 0
    for start in (m.start() for m in TAG_START.finditer(text)):
        if start < pos:
            continue
        tag = _TAG.match(text, start)
        if tag is None:
            raise TextError(
                f"text: unclosed markup at position {start}: {text[start : start + 20]!r}"
            )
        raw.extend(_paragraphs(text[pos:start]))
        raw.extend(_tag(tag, start))
        pos = tag.end()
    raw.extend(_paragraphs(text[pos:]))
    return _merge(raw)


def _tag(tag: re.Match[str], start: int) -> list[Piece]:
    name = tag["name"].lower()
    where = f"<{'/' if tag['close'] else ''}{tag['name']}> at position {start}"
    attrs = _attributes(tag["attrs"], where)
    if name == "break" and not tag["close"]:
        return [_break(attrs, where)]
    if name == "break":
        return []  # </break> after <break ...>: nothing more
    if name in ("speak", "p") and attrs and name == "p":
        raise TextError(f"text: {where} takes no attributes")
    if name == "speak":
        return []
    if name == "p":
        return [PARAGRAPH_PAUSE]
    raise TextError(
        f'text: unsupported markup {where}; voxlet reads <break time="500ms"/>, <p> and <speak>'
    )


def _merge(raw: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for piece in raw:
        if isinstance(piece, str):
            if not piece.strip():
                continue
            if out and isinstance(out[-1], str):
                out[-1] = out[-1] + piece
            else:
                out.append(piece)
            continue
        if piece.paragraph and not any(isinstance(p, str) for p in out):
            continue  # nothing said yet
        last = out[-1] if out else None
        if isinstance(last, Pause):
            if piece.paragraph and last.paragraph:
                continue
            out[-1] = Pause(last.seconds + piece.seconds, last.paragraph and piece.paragraph)
        else:
            out.append(piece)
    if out and isinstance(out[-1], Pause) and out[-1].paragraph:
        out.pop()
    return out
