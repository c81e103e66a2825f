"""Word timings, the text half: which of the text's own words each chunk speaks, and where in
the chunk. Pure.

The words are the text as written (runs of non-space, markup removed, before normalisation:
"$5" is one word, said as "five dollars"). Normalisation's rewrites say which words of the
normalised text each written word became; a word-by-word alignment maps those onto the words of
the chunks the model is prompted with (preparation and tokenization change little: a capital, a
full stop, a word cut at the token budget). Within a chunk a word's place is a fraction of the
chunk's speech, from the length of what is said before it (letters, and a pause at
punctuation); the runtime turns fractions into seconds once it knows the chunk's frames.

A written word said as several words spans them all; written words said together ("$5 million"
as "five million dollars") share that span equally; a written word that is not said at all (a
symbol the rules drop) is a point where it stood. Every written word is marked exactly once, in
order, with starts and ends that never go back.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from voxlet.text.normalize import Rewrite

_WORD = re.compile(r"\S+")
_VOWELS = re.compile(r"[aeiouyAEIOUY]+")
_SENTENCE_END = ".!?…"
_CLAUSE_END = ",;:—–"
_CLOSERS = "\"'”’)]»"
_RESYNC_WINDOW = 16  # words looked ahead on each side when the two word lists disagree


@dataclass(frozen=True, slots=True)
class WordMark:
    """A written word in one chunk. `start` / `end`: where it starts / ends, as a fraction
    (0..1) of the chunk's speech; None where that is in an earlier / a later chunk (a word said
    across a chunk boundary is marked in both)."""

    word: str
    start: float | None
    end: float | None


def mark_words(
    text: str, normalized: str, rewrites: Sequence[Rewrite], chunks: Sequence[str]
) -> list[tuple[WordMark, ...]]:
    """The marks of each chunk: `text` is what was written, `normalized` and `rewrites` what
    normalisation made of it, `chunks` the chunks' texts (`TextChunk.raw`)."""
    spoken = [w for raw in chunks for w in raw.split()]
    firsts = [0]
    for raw in chunks:
        firsts.append(firsts[-1] + len(raw.split()))
    written = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]
    places = _written_places(text, normalized, rewrites, written, spoken)
    marks: list[list[WordMark]] = [[] for _ in chunks]
    if not chunks:
        return []
    layouts = [_layout(raw.split()) for raw in chunks]
    for (word, _, _), (x0, x1) in zip(written, places, strict=True):
        if x1 <= x0:  # not said: a point, in the chunk where it stood
            c = _chunk_of_start(firsts, x0)
            f = _fraction(layouts[c], x0 - firsts[c], start=True)
            marks[c].append(WordMark(word, f, f))
            continue
        c0, c1 = _chunk_of_start(firsts, x0), _chunk_of_end(firsts, x1)
        f0 = _fraction(layouts[c0], x0 - firsts[c0], start=True)
        f1 = _fraction(layouts[c1], x1 - firsts[c1], start=False)
        if c0 == c1:
            marks[c0].append(WordMark(word, f0, max(f0, f1)))
        else:
            marks[c0].append(WordMark(word, f0, None))
            marks[c1].append(WordMark(word, None, f1))
    return [tuple(m) for m in marks]


def _written_places(
    text: str,
    normalized: str,
    rewrites: Sequence[Rewrite],
    written: list[tuple[str, int, int]],
    spoken: list[str],
) -> list[tuple[float, float]]:
    """Each written word's span [x0, x1) over the spoken words (word i is [i, i + 1))."""
    said = [(m.start(), m.end()) for m in _WORD.finditer(normalized)]
    said_starts = [s for s, _ in said]
    said_ends = [e for _, e in said]
    said_places = _said_places([normalized[s:e] for s, e in said], spoken)
    segments = _segments(text, normalized, rewrites)
    places: list[tuple[float, float]] = []
    k = 0
    for _, ws, we in written:
        while k < len(segments) and segments[k][1] <= ws:
            k += 1
        lo, hi = _output_span(segments, k, ws, we)
        first = bisect.bisect_right(said_ends, lo)  # said words ending after lo ...
        last = bisect.bisect_left(said_starts, hi)  # ... and starting before hi
        if first < last:
            places.append((said_places[first][0], said_places[last - 1][1]))
        else:
            at = said_places[first][0] if first < len(said_places) else float(len(spoken))
            places.append((at, at))
    _share(places)
    previous_end = 0.0
    for i, (x0, x1) in enumerate(places):  # never back: starts and ends in order
        x0 = max(x0, previous_end)
        x1 = max(x1, x0)
        places[i] = (x0, x1)
        previous_end = x1
    return places


def _share(places: list[tuple[float, float]]) -> None:
    """Written words given the same span (said together) split it into equal parts."""
    i = 0
    while i < len(places):
        j = i
        while j + 1 < len(places) and places[j + 1] == places[i]:
            j += 1
        x0, x1 = places[i]
        n = j - i + 1
        if n > 1 and x1 > x0:
            step = (x1 - x0) / n
            for k in range(n):
                places[i + k] = (x0 + k * step, x0 + (k + 1) * step)
        i = j + 1


def _segments(
    text: str, normalized: str, rewrites: Sequence[Rewrite]
) -> list[tuple[int, int, int, int, bool]]:
    """`text` cut into spans, each with the span of `normalized` it became: (source start,
    source end, output start, output end, copied). Text between rewrites is copied as it is
    (normalisation may put a space on either side of a rewrite)."""
    segments: list[tuple[int, int, int, int, bool]] = []
    s = o = 0

    def copy(a: int, b: int, out_end: int) -> None:
        nonlocal o
        if b <= a:
            return
        piece = text[a:b]
        if not normalized.startswith(piece, o) and normalized.startswith(piece, o + 1):
            o += 1  # a space put after the rewrite before
        if normalized.startswith(piece, o):
            segments.append((a, b, o, o + len(piece), True))
        else:  # not found where expected: the whole gap stands for it
            segments.append((a, b, o, max(o, out_end), False))

    for r in rewrites:
        copy(s, r.source_start, r.output_start)
        segments.append((r.source_start, r.source_end, r.output_start, r.output_end, False))
        s, o = r.source_end, r.output_end
    copy(s, len(text), len(normalized))
    return segments


def _output_span(
    segments: list[tuple[int, int, int, int, bool]], k: int, ws: int, we: int
) -> tuple[int, int]:
    """The span of the normalised text that source[ws:we] became (segments from index k on)."""
    lo = hi = None
    while k < len(segments) and segments[k][0] < we:
        sa, sb, oa, ob, copied = segments[k]
        if sb > ws:
            a, b = (oa + max(ws, sa) - sa, oa + min(we, sb) - sa) if copied else (oa, ob)
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
        k += 1
    if lo is None or hi is None:
        return (0, 0)
    return lo, hi


def _key(word: str) -> str:
    key = "".join(ch for ch in word.casefold() if ch.isalnum())
    return key or word


def _said_places(said: list[str], spoken: list[str]) -> list[tuple[float, float]]:
    """Each normalised word's span over the spoken words: a word found there is its word; a
    run that differs maps onto the spoken run it stands for, proportionally; a word the chunks
    lack is a point."""
    places: list[tuple[float, float]] = []
    for i1, i2, j1, j2 in _align([_key(w) for w in said], [_key(w) for w in spoken]):
        n = i2 - i1
        step = (j2 - j1) / n if n else 0.0
        places.extend((j1 + k * step, j1 + (k + 1) * step) for k in range(n))
    return places


def _align(a: list[str], b: list[str]) -> list[tuple[int, int, int, int]]:
    """Blocks (i1, i2, j1, j2) covering both lists in order: equal runs one to one, and where
    they disagree the shortest skip on either side that makes them agree again (looking at most
    _RESYNC_WINDOW words ahead). Linear in the lengths when the lists mostly agree."""
    blocks: list[tuple[int, int, int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            blocks.append((i, i + 1, j, j + 1))
            i, j = i + 1, j + 1
            continue
        found = _resync(a, b, i, j)
        if found is None:
            blocks.append((i, i + 1, j, j + 1))  # no agreement in sight: word for word
            i, j = i + 1, j + 1
        else:
            blocks.append((i, found[0], j, found[1]))
            i, j = found
    if i < len(a) or j < len(b):
        blocks.append((i, len(a), j, len(b)))
    return blocks


def _resync(a: list[str], b: list[str], i: int, j: int) -> tuple[int, int] | None:
    """The nearest (i', j') past (i, j), fewest words skipped in all, where the lists agree."""
    for skipped in range(1, 2 * _RESYNC_WINDOW + 1):
        for di in range(max(0, skipped - _RESYNC_WINDOW), min(skipped, _RESYNC_WINDOW) + 1):
            ii, jj = i + di, j + skipped - di
            if ii < len(a) and jj < len(b) and a[ii] == b[jj]:
                return ii, jj
    return None


@dataclass(frozen=True, slots=True)
class _Layout:
    starts: list[float]
    lengths: list[float]
    total: float


def _layout(words: list[str]) -> _Layout:
    """Where each word of a chunk starts and how long it is, in units: a letter or digit is
    one, each run of vowels (a syllable, roughly) two more, a word at least two; punctuation
    after a word is a pause before the next (three units at a sentence's end, two at a
    clause's). Chosen on the corpus's training split (benches/bench_word_timings.py)."""
    starts, lengths = [], []
    at = 0.0
    for word in words:
        core = word.rstrip(_CLOSERS)
        letters = sum(ch.isalnum() for ch in word)
        length = max(2.0, float(letters + 2 * len(_VOWELS.findall(word))))
        starts.append(at)
        lengths.append(length)
        at += length
        if core[-1:] and core[-1] in _SENTENCE_END:
            at += 3.0
        elif core[-1:] and core[-1] in _CLAUSE_END:
            at += 2.0
    total = starts[-1] + lengths[-1] if words else 1.0
    return _Layout(starts, lengths, total)


def _fraction(layout: _Layout, x: float, start: bool) -> float:
    """Position x over a chunk's words (word i is [i, i + 1)) as a fraction of its speech; at a
    whole number, a start is where that word starts and an end where the word before ends."""
    n = len(layout.starts)
    if n == 0:
        return 0.0
    i = min(math.floor(x), n - 1) if start else max(math.ceil(x) - 1, 0)
    i = min(max(i, 0), n - 1)
    t = min(max(x - i, 0.0), 1.0)
    return min(1.0, (layout.starts[i] + t * layout.lengths[i]) / layout.total)


def _chunk_of_start(firsts: list[int], x: float) -> int:
    """The chunk a start at x falls in (the last chunk for x at the very end)."""
    return min(max(bisect.bisect_right(firsts, x) - 1, 0), len(firsts) - 2)


def _chunk_of_end(firsts: list[int], x: float) -> int:
    """The chunk an end at x falls in (the first chunk for x at the very start)."""
    return min(max(bisect.bisect_left(firsts, x) - 1, 0), len(firsts) - 2)
