"""The engine: streams whose FlowLM frames are made on one shared thread, stepped together.
Every stream is a client of one (the model's shared engine unless given its own). A stream
gives the same bits alone or among others, whatever joins, leaves or fails around it; it
really batches; a stream alone gets the first-frame relay; the engine's thread lives only
while streams do."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.engine_cases import OPTS, TEXTS, VOICE, all_at_once
from voxlet import GenerationOptions, StreamError
from voxlet.runtime import StreamOptions


@pytest.fixture(scope="module")
def solo(tiny_tts):
    """Each text spoken alone (in the model's shared engine, nothing else in it)."""
    return [tiny_tts.synthesize(t, VOICE, o) for t, o in zip(TEXTS, OPTS, strict=True)]


@pytest.fixture
def engine(tiny_tts):
    e = tiny_tts.engine()
    yield e
    e.close()


def test_a_stream_alone_in_the_engine_gives_its_own_bits(tiny_tts, int8_tts, solo, engine):
    for text, opts, want in zip(TEXTS, OPTS, solo, strict=True):
        assert np.array_equal(tiny_tts.synthesize(text, VOICE, opts, engine=engine), want)
    with_speed = OPTS[0].replace(speed=1.5)
    assert np.array_equal(
        tiny_tts.synthesize(TEXTS[0], VOICE, with_speed, engine=engine),
        tiny_tts.synthesize(TEXTS[0], VOICE, with_speed),
    )
    eight = int8_tts.engine()
    try:
        assert np.array_equal(
            int8_tts.synthesize(TEXTS[2], VOICE, OPTS[2], engine=eight),
            int8_tts.synthesize(TEXTS[2], VOICE, OPTS[2]),
        )
    finally:
        eight.close()


def test_streams_stepped_together_give_their_own_bits_and_share_steps(tiny_tts, solo, engine):
    for a, b in zip(all_at_once(tiny_tts, engine=engine), solo, strict=True):
        assert np.array_equal(a, b)
    assert engine.rows > engine.steps  # some steps made frames for several streams


def test_word_timings_and_text_still_being_written(tiny_tts, engine):
    text = TEXTS[1]
    assert (
        tiny_tts.synthesize(text, VOICE, OPTS[1], engine=engine, word_timings=True)[1]
        == (tiny_tts.synthesize(text, VOICE, OPTS[1], word_timings=True)[1])
    )
    fragments = [text[i : i + 3] for i in range(0, len(text), 3)]
    audio = tiny_tts.synthesize(iter(fragments), VOICE, OPTS[1], engine=engine)
    assert len(audio) > 0 and np.isfinite(audio).all()


@settings(max_examples=8, deadline=None)
@given(
    starts=st.lists(st.floats(0, 0.05), min_size=4, max_size=4),
    cancel=st.lists(st.one_of(st.none(), st.integers(0, 6)), min_size=4, max_size=4),
)
def test_any_arrivals_and_cancellations_leave_every_other_stream_its_bits(
    tiny_tts, solo, starts, cancel
):
    engine = tiny_tts.engine()
    got: list = [None] * len(TEXTS)

    def speak(i: int) -> None:
        time.sleep(starts[i])
        stream = tiny_tts.open_stream(TEXTS[i], VOICE, OPTS[i], engine=engine)
        frames = []
        for n, pcm in enumerate(stream.frames()):
            if cancel[i] is not None and n == cancel[i]:
                stream.stop()
                break
            frames.append(pcm)
        got[i] = np.concatenate(frames) if frames else np.zeros(0, np.float32)

    try:
        threads = [threading.Thread(target=speak, args=(i,)) for i in range(len(TEXTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i, want in enumerate(solo):
            if cancel[i] is None:
                assert np.array_equal(got[i], want), i
            else:
                assert np.array_equal(got[i], want[: len(got[i])]), i  # a prefix of its own
        deadline = time.monotonic() + 5
        while engine.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.active == 0  # every stream has left
    finally:
        engine.close()


def test_a_failing_stream_fails_alone(tiny_tts, solo, engine):
    def broken():
        yield "Hello there. "
        raise RuntimeError("the language model went away")

    results: dict = {}

    def good() -> None:
        results["good"] = tiny_tts.synthesize(TEXTS[2], VOICE, OPTS[2], engine=engine)

    def bad() -> None:
        try:
            tiny_tts.synthesize(broken(), VOICE, OPTS[0], engine=engine)
        except StreamError as e:
            results["bad"] = e

    threads = [threading.Thread(target=good), threading.Thread(target=bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert np.array_equal(results["good"], solo[2])
    assert results["bad"].stage == "flowlm" and "went away" in str(results["bad"])


def test_a_closed_engine_fails_its_streams_and_takes_no_more(tiny_tts):
    engine = tiny_tts.engine()
    long = OPTS[0].replace(max_frames=2000, eos_threshold=1e9, on_no_eos="ignore")
    stream = tiny_tts.open_stream(TEXTS[0], VOICE, long, engine=engine)
    frames = stream.frames()
    next(frames)
    engine.close()
    with pytest.raises(StreamError, match="engine was closed"):
        list(frames)
    with pytest.raises(RuntimeError, match="closed"):
        tiny_tts.open_stream(TEXTS[0], VOICE, OPTS[0], engine=engine)


def test_speak_through_the_engine(tiny_tts, solo, engine):
    got: list = []
    speech = tiny_tts.speak(TEXTS[0], VOICE, OPTS[0], on_audio=got.append, engine=engine)
    speech.wait(60)
    assert np.array_equal(np.concatenate(got), solo[0])


def test_a_long_chunk_prefilled_in_slices_keeps_its_bits(tiny_tts, int8_tts, engine):
    """Chunks of up to 50 tokens are prefilled PREFILL_SLICE tokens a round between the others'
    steps; the result is the bits of one whole prefill."""
    from voxlet.runtime.engine import PREFILL_SLICE

    text = (
        "The quick brown fox jumps over the lazy dog near the riverbank on a sunny afternoon, "
        "while a group of children played football in the park, laughing."
    )
    opts = GenerationOptions(seed=9, max_tokens_per_chunk=50)
    [chunk] = tiny_tts.chunks(text, opts)
    assert len(chunk.token_ids) > 2 * PREFILL_SLICE + 1
    for tts, e in ((tiny_tts, engine), (int8_tts, int8_tts.engine())):
        try:
            want = tts.synthesize(text, VOICE, opts)
            others = [
                threading.Thread(
                    target=tts.synthesize,
                    args=(TEXTS[0], VOICE, OPTS[0]),
                    kwargs={"engine": e},
                )
                for _ in range(2)
            ]
            for t in others:
                t.start()
            got = tts.synthesize(text, VOICE, opts, engine=e)
            for t in others:
                t.join(60)
            assert np.array_equal(got, want)
        finally:
            if e is not engine:
                e.close()


def test_stopping_a_stream_joins_its_planning_thread(tiny_tts, engine):
    """Text still being written is planned on the stream's own thread: stopping the stream
    joins it (a thread left inside the tokenizer at exit aborts the process)."""

    def fragments():
        yield "Long text to plan. " * 200
        while True:  # an LLM that keeps writing
            time.sleep(0.01)
            yield "More. "

    stream = tiny_tts.open_stream(fragments(), VOICE, OPTS[0], engine=engine)
    frames = stream.frames()
    next(frames)
    stream.stop()
    assert not stream.is_alive
    assert not [t for t in threading.enumerate() if t.name == "voxlet-plans" and t.is_alive()]


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "voxlet-engine"]


def test_streams_without_an_engine_share_the_models_own(tiny_tts, solo):
    shared = tiny_tts._shared_engine(None)
    steps, rows = shared.steps, shared.rows
    for a, b in zip(all_at_once(tiny_tts), solo, strict=True):
        assert np.array_equal(a, b)
    assert shared.rows - rows > shared.steps - steps  # batched, though nobody asked
    assert engine_threads() == []  # its thread ended with the last stream


def test_the_engines_thread_ends_with_its_last_stream_and_comes_back(tiny_tts, engine):
    opts = OPTS[0].replace(max_frames=3, eos_threshold=1e9, on_no_eos="ignore")
    for _ in range(3):
        assert len(tiny_tts.synthesize(TEXTS[0], VOICE, opts, engine=engine)) == 3 * 1920
        assert engine_threads() == []
    stream = tiny_tts.open_stream(TEXTS[0], VOICE, opts.replace(max_frames=500), engine=engine)
    frames = stream.frames()  # kept: a dropped iterator closes its stream
    next(frames)
    assert len(engine_threads()) == 1
    stream.stop()
    assert engine_threads() == []


def test_a_stream_alone_gets_the_first_frame_relay(tiny_tts, monkeypatch):
    """Its first frame made with the cores of both stages, the rest with the engine's own."""
    flow_lm = tiny_tts.network.flow_lm
    threads_at_step: list[int] = []
    step = flow_lm.step

    def counted(*args, **kwargs):
        threads_at_step.append(torch.get_num_threads())
        return step(*args, **kwargs)

    monkeypatch.setattr(flow_lm, "step", counted)
    opts = OPTS[0].replace(max_frames=6, eos_threshold=1e9, on_no_eos="ignore")
    relay = StreamOptions(first_frame_threads=2, flowlm_threads=1, mimi_threads=1)
    audio = np.concatenate(list(tiny_tts.stream(TEXTS[0], VOICE, opts, relay)))
    assert threads_at_step == [2, 1, 1, 1, 1, 1]
    monkeypatch.undo()
    assert np.array_equal(audio, tiny_tts.synthesize(TEXTS[0], VOICE, opts))  # same bits
