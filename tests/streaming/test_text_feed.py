"""Text that is still being written: fragments in any split give the whole text's chunks when
they arrive ahead; when they trickle in, speech starts on the first complete sentence and no
word is lost, doubled or reordered; a failing or wrong fragment source fails the stream."""

from __future__ import annotations

import itertools
import re
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import fixture_path
from voxlet import GenerationOptions, StreamError, TextError
from voxlet.runtime.text_feed import IncrementalPlanner
from voxlet.text import TextChunk
from voxlet.text.markup import Pause
from voxlet.tts import _same_piece

VOICE = str(fixture_path("tiny_voice.safetensors"))
OPTS = GenerationOptions(temperature=0.0, max_frames=4, on_no_eos="ignore", seed=5)
_WORDS = (
    "the a quick brown fox jumps over lazy dog we it is not here there when how why "
    "Dr. Smith $5 3.5 1999 9:30 U.S. e.g. FBI"
).split()
_ENDS = ["", "", "", ",", ".", "!", "?", "...", ";"]


@st.composite
def texts(draw):
    n = draw(st.integers(1, 40))
    words = []
    for i in range(n):
        word = draw(st.sampled_from(_WORDS))
        if i == 0 or words[-1][-1] in ".!?":  # written text: sentences start with a capital
            word = word[0].upper() + word[1:]
        words.append(word + draw(st.sampled_from(_ENDS)))
    text = " ".join(words)
    if draw(st.booleans()):
        text = text.replace(" ", ' <break time="200ms"/> ', 1)
    if draw(st.booleans()):
        text = re.sub(r"([.!?]) ", "\\1\n\n", text, count=1)
    return text


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def planner(tts, opts=OPTS):
    return IncrementalPlanner(
        lambda t, before: tts._pieces(
            t, opts, before is not None, before or "", require_speech=False
        ),
        _same_piece,
        20 * opts.max_tokens_per_chunk,
    )


def drain(p: IncrementalPlanner) -> list:
    out = []
    while (pieces := p.next_pieces()) is not None:
        out.extend(pieces)
    return out


def key(pieces) -> list:
    """Chunk texts, and the total silence between them (pauses side by side add up)."""
    out: list = []
    for p in pieces:
        if isinstance(p, Pause):
            if out and isinstance(out[-1], float):
                out[-1] = round(out[-1] + p.seconds, 6)
            else:
                out.append(round(p.seconds, 6))
        else:
            out.append(p.text)
    return out


@given(text=texts(), cuts=st.lists(st.integers(0, 10_000), max_size=30))
def test_text_that_arrived_ahead_gives_the_whole_texts_chunks(tiny_tts, text, cuts):
    """Where that is possible: every sentence starts with a capital, as written text does (a
    chunk's text is prepared with a capital, which the whole text only has at its start)."""
    try:
        whole = tiny_tts._pieces(text, OPTS)
    except TextError:
        return
    p = planner(tiny_tts)
    for fragment in split_at(text, cuts):
        p.feed(fragment)
    p.close()
    assert key(drain(p)) == key(whole)
    assert p.finished


@given(text=texts())
def test_one_character_per_fragment_ahead_too(tiny_tts, text):
    try:
        whole = tiny_tts._pieces(text, OPTS)
    except TextError:
        return
    p = planner(tiny_tts)
    for c in text:
        p.feed(c)
    p.close()
    assert key(drain(p)) == key(whole)


def words(pieces) -> list[str]:
    said = " ".join(p.text for p in pieces if isinstance(p, TextChunk))
    return re.sub(r"[^\w' ]", " ", said.lower()).split()


@given(
    text=texts(),
    cuts=st.lists(st.integers(0, 10_000), max_size=40),
    pulls=st.lists(st.booleans(), min_size=1, max_size=60),
)
def test_trickling_text_loses_doubles_and_reorders_no_word(tiny_tts, text, cuts, pulls):
    """The words as written (normalising can read a word differently when the sentence before
    it was cut off early, "Dr." after "Quick." rather than "Quick...")."""
    opts = OPTS.replace(normalize=False)
    try:
        whole = tiny_tts._pieces(text, opts)
    except TextError:
        return
    p = planner(tiny_tts, opts)
    got = []
    for i, fragment in enumerate(split_at(text, cuts)):
        p.feed(fragment)
        if pulls[i % len(pulls)]:  # the FlowLM thread asks for its next chunk now
            got.extend(p.next_pieces() or [])
    p.close()
    got.extend(drain(p))
    assert words(got) == words(whole)
    assert sum(x.seconds for x in got if isinstance(x, Pause)) == pytest.approx(
        sum(x.seconds for x in whole if isinstance(x, Pause))
    )


def test_normalising_sees_the_sentence_before(tiny_tts):
    text = "In 1999 he paid $5. Then Dr. Lee came. He is at 10 Main St. Bring 2 kg, e.g. rice."
    p = planner(tiny_tts)
    got = []
    for c in text:  # one character at a time, a chunk asked for after each
        p.feed(c)
        got.extend(p.next_pieces() or [])
    p.close()
    got.extend(drain(p))
    assert len(got) > 1  # it did start before the end
    assert words(got) == words(tiny_tts.chunks(text, OPTS))
    assert "doctor" in words(got) and "street" in words(got)


def test_speech_starts_on_the_first_complete_sentence(tiny_tts):
    p = planner(tiny_tts)
    p.feed("Hello there")
    assert p.next_pieces() is None  # the sentence is still open
    p.feed(". How are")
    [first] = p.next_pieces()
    assert first.text == "Hello there."
    p.feed(" you? Dr.")
    [second] = p.next_pieces()
    assert second.text == "How are you?"
    assert p.next_pieces() is None  # "Dr." waits for the name
    p.feed(" Lee is in.")
    [third] = p.next_pieces()
    assert third.text == "Doctor Lee is in."


def test_a_long_open_sentence_is_started_at_a_clause(tiny_tts):
    p = planner(tiny_tts)
    p.feed("When the rain stopped and the wind died down over the hills and fields, we all ")
    [first] = p.next_pieces()
    assert first.text.startswith("When the rain stopped") and first.text.endswith("fields.")
    p.feed("went out to play.")
    p.close()
    assert [c.text for c in drain(p)] == ["We all went out to play."]


def test_a_stream_of_fragments_speaks_the_same_as_the_whole_text(tiny_tts):
    text = "Hello there. It costs $5 today! How are you?"
    fragments = [text[i : i + 3] for i in range(0, len(text), 3)]
    got = tiny_tts.synthesize(iter(fragments), VOICE, OPTS)
    # chunk boundaries may fall differently (the FlowLM thread may start before all text is
    # in), but every chunk's audio is there: same number of frames
    n_chunks = len(tiny_tts.chunks(text, OPTS))
    assert len(got) >= n_chunks * 4 * 1920
    assert np.isfinite(got).all() and np.abs(got).max() > 0


def test_empty_fragments_are_fine_and_no_text_is_an_error(tiny_tts):
    audio = tiny_tts.synthesize(["", "Hi", "", " there.", ""], VOICE, OPTS)
    assert len(audio) == 4 * 1920
    with pytest.raises(StreamError, match="Text prompt cannot be empty"):
        tiny_tts.synthesize(["", "  ", ""], VOICE, OPTS)


def test_a_failing_fragment_source_fails_the_stream(tiny_tts):
    def source():
        yield "Hello there. "
        raise RuntimeError("the model behind the text died")

    with pytest.raises(StreamError, match="the model behind the text died") as info:
        tiny_tts.synthesize(source(), VOICE, OPTS)
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(StreamError, match="text fragment 1: must be a str, got int"):
        tiny_tts.synthesize(["Hi. ", 5], VOICE, OPTS)
    with pytest.raises(TextError, match="iterable of str, got bytes"):
        tiny_tts.synthesize(b"Hi.", VOICE, OPTS)  # type: ignore[arg-type]


def test_stop_while_waiting_for_text_returns_at_once(tiny_tts):
    more = threading.Event()

    def source():
        yield "Hello there. "
        more.wait(30)
        yield "Never said."

    stream = tiny_tts.open_stream(source(), VOICE, OPTS)
    frames = stream.frames()
    for _ in range(4):  # the first sentence, then the FlowLM thread waits for text
        next(frames)
    start = time.monotonic()
    stream.stop()
    assert time.monotonic() - start < 0.5
    assert not stream.is_alive
    more.set()
    deadline = time.monotonic() + 5
    while any(t.name == "voxlet-text" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
