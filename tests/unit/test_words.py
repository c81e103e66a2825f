"""Word timings, the text half (`voxlet.text.words`) and the clock (`runtime.word_clock`): every
written word marked exactly once, in order, never going back, wherever normalisation, chunking
and preparation put its spoken words."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import fixture_path
from voxlet.runtime.word_clock import WordClock, WordTiming
from voxlet.text import TextRules, load_tokenizer, split_into_chunks
from voxlet.text.normalize import Rewrite, normalize_aligned
from voxlet.text.words import WordMark, mark_words

_TOKENIZER = load_tokenizer(fixture_path("tokenizer.model"))


def words_of(marks: list[tuple[WordMark, ...]]) -> list[str]:
    """The written words the marks stand for, a word marked in two chunks counted once."""
    out = []
    for chunk in marks:
        for mark in chunk:
            if mark.start is not None:
                out.append(mark.word)
    return out


def check_order(marks: list[tuple[WordMark, ...]]) -> None:
    for chunk in marks:
        at = 0.0
        for mark in chunk:
            for x in (mark.start, mark.end):
                if x is not None:
                    assert 0.0 <= x <= 1.0
                    assert x >= at - 1e-12
                    at = x


def timings(marks, chunk_samples=24_000, gap=2400, speed=1.0) -> list[WordTiming]:
    """Times through a clock: chunk k's speech from k * (chunk + gap) for `chunk` samples."""
    clock = WordClock(speed)
    out = []
    for k, chunk in enumerate(marks):
        start = k * (chunk_samples + gap)
        out.extend(clock.chunk(chunk, start, start + chunk_samples))
    return out


def test_plain_words_span_the_chunk_in_order():
    text = "The quick brown fox jumps."
    [marks] = mark_words(text, text, [], [text])
    assert [m.word for m in marks] == text.split()
    assert marks[0].start == 0.0 and marks[-1].end == 1.0
    for a, b in itertools.pairwise(marks):
        assert a.end is not None and b.start is not None
        assert a.start < a.end <= b.start  # type: ignore[operator]
    # longer words take longer: "quick" (5 letters) longer than "The" (3)
    assert marks[1].end - marks[1].start > marks[0].end - marks[0].start  # type: ignore[operator]


def test_punctuation_is_a_pause_between_words():
    [marks] = mark_words("Yes, we can.", "Yes, we can.", [], ["Yes, we can."])
    yes, we, _ = marks
    assert we.start > yes.end  # type: ignore[operator]


def test_a_normalised_word_is_one_written_word_over_all_it_became():
    text = "It costs $5 today."
    said, rewrites = normalize_aligned(text)
    assert said == "It costs five dollars today."
    [marks] = mark_words(text, said, rewrites, [said])
    assert [m.word for m in marks] == ["It", "costs", "$5", "today."]
    dollars = marks[2]
    # "$5" runs from where "five" starts to where "dollars" ends: 2 of 5 spoken words
    together = mark_words(said, said, [], [said])[0]
    assert dollars.start == together[2].start and dollars.end == together[3].end


def test_a_word_said_across_two_chunks_is_marked_in_both():
    text = "Pay $4.50 now."
    said, rewrites = normalize_aligned(text)
    assert said == "Pay four dollars and fifty cents now."
    chunks = ["Pay four dollars", "and fifty cents now."]
    first, second = mark_words(text, said, rewrites, chunks)
    assert first[-1].word == "$4.50" and first[-1].end is None
    assert second[0].word == "$4.50" and second[0].start is None
    assert words_of([first, second]) == text.split()
    timed = timings([first, second])
    assert [t.word for t in timed] == text.split()
    assert timed[1].start_s < 1.0 < timed[1].end_s  # from the first chunk into the second


def test_words_said_together_share_their_span():
    text = "a ~5 million b"
    said = "a five million dollars b"
    # one rewrite for two written words, as "$5 million" is said "five million dollars"
    rewrites = [Rewrite(2, 12, 2, 22)]
    [marks] = mark_words(text, said, rewrites, [said])
    five, million = marks[1], marks[2]
    assert five.start < five.end == million.start < million.end  # type: ignore[operator]
    assert five.start == marks[0].end or five.start > marks[0].end  # type: ignore[operator]


def test_a_word_not_said_is_a_point_where_it_stood():
    text = "left ~ right"
    said = "left  right"
    [marks] = mark_words(text, said, [Rewrite(5, 6, 5, 5)], [said])
    left, tilde, right = marks
    assert tilde.start == tilde.end
    assert left.end <= tilde.start <= right.start  # type: ignore[operator]


def test_preparation_and_a_word_cut_at_the_budget_are_followed():
    written = "hello world supercalifragilistic end"
    # the chunks as preparation and a tiny budget made them: a capital, a full stop, the
    # long word cut into pieces
    chunks = ["Hello world super", "cali fragi listic end."]
    marks = mark_words(written, written, [], chunks)
    assert words_of(marks) == written.split()
    long_word = [m for chunk in marks for m in chunk if m.word == "supercalifragilistic"]
    assert len(long_word) == 2 and long_word[0].end is None and long_word[1].start is None
    end = marks[1][-1]
    assert end.word == "end" and end.end == 1.0


def test_other_languages_pass_through_word_for_word():
    text = "Je paie 5 € à 7h45, d'accord ?"
    said, rewrites = normalize_aligned(text, "fr")
    assert (said, rewrites) == (text, [])
    [marks] = mark_words(text, said, rewrites, [text])
    assert [m.word for m in marks] == text.split()


def test_no_chunks_no_marks():
    assert mark_words("", "", [], []) == []


def test_the_clock_divides_by_the_speed_and_keeps_order():
    marks = mark_words("one two three", "one two three", [], ["one two three"])
    at_1 = timings(marks)
    at_2 = timings(marks, speed=2.0)
    assert [t.word for t in at_2] == ["one", "two", "three"]
    for a, b in zip(at_1, at_2, strict=True):
        assert b.start_s == pytest.approx(a.start_s / 2) and b.end_s == pytest.approx(a.end_s / 2)
    assert at_1[-1].end_s == pytest.approx(1.0)


_VOCAB = (
    "the a quick brown fox jumps over lazy dog Dr. Smith $5 $4.50 3.5 1999 1999-03-14 9:30 "
    "U.S. e.g. FBI 42nd 1/2 50% 5kg www.site.net a@b.co & + # -- supercalifragilisticexpialidocious"
).split()


@given(
    words=st.lists(st.sampled_from(_VOCAB), min_size=1, max_size=30),
    ends=st.lists(st.sampled_from(["", "", ",", ".", "!", "?", ";"]), min_size=1, max_size=30),
    budget=st.integers(3, 40),
    normalize=st.booleans(),
)
def test_every_written_word_once_in_order_through_the_real_text_path(
    words, ends, budget, normalize
):
    text = " ".join(w + ends[i % len(ends)] for i, w in enumerate(words))
    said, rewrites = normalize_aligned(text) if normalize else (text, [])
    chunks = split_into_chunks(said, _TOKENIZER, TextRules(), budget)
    marks = mark_words(text, said, rewrites, [c.raw for c in chunks])
    assert len(marks) == len(chunks)
    assert words_of(marks) == text.split()
    check_order(marks)
    timed = timings(marks)
    assert [t.word for t in timed] == text.split()
    previous_end = 0.0
    for t in timed:
        assert previous_end <= t.start_s <= t.end_s
        previous_end = t.end_s
    assert timed[-1].end_s <= len(marks) * 1.1
