"""The engine's decoder: one thread decodes every stream's ready frames as one batch. Batches
really hold several streams and each keeps its own bits; a listener who does not read holds
nobody else; a failed decode fails the streams in it and the decoder goes on; its thread lives
only while streams do."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.engine_cases import OPTS, TEXTS, VOICE, all_at_once
from voxlet import StreamError
from voxlet.runtime import StreamOptions
from voxlet.runtime.decoder import ROOM_MARGIN_FRAMES

LONG = OPTS[0].replace(max_frames=2000, eos_threshold=1e9, on_no_eos="ignore")


@pytest.fixture
def engine(tiny_tts):
    e = tiny_tts.engine()
    yield e
    e.close()


def decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "voxlet-decoder"]


def test_streams_decoded_together_keep_their_bits(tiny_tts, engine):
    solo = [tiny_tts.synthesize(t, VOICE, o) for t, o in zip(TEXTS, OPTS, strict=True)]
    for a, b in zip(all_at_once(tiny_tts, engine=engine), solo, strict=True):
        assert np.array_equal(a, b)
    assert engine.decoder.groups > engine.decoder.batches  # some batches held several
    assert decoder_threads() == []  # its thread ended with the last stream


def test_a_listener_who_does_not_read_holds_nobody_else(tiny_tts, engine):
    unread = tiny_tts.open_stream(
        TEXTS[0], VOICE, LONG, StreamOptions(ring_capacity_s=0.5), engine=engine
    )
    try:
        deadline = time.monotonic() + 30
        while unread.pipeline.free_frames >= 4 * 1920 + ROOM_MARGIN_FRAMES:
            assert time.monotonic() < deadline, "the unread stream's ring never filled"
            time.sleep(0.01)
        # its ring is as full as the decoder fills it: another stream runs to its end
        got = tiny_tts.synthesize(TEXTS[2], VOICE, OPTS[2], engine=engine)
        assert np.array_equal(got, tiny_tts.synthesize(TEXTS[2], VOICE, OPTS[2]))
        assert unread.is_alive and not unread.failed
    finally:
        unread.stop()
    assert not unread.is_alive


def test_a_failed_decode_fails_its_streams_and_the_decoder_goes_on(tiny_tts, engine, monkeypatch):
    model = engine.model
    decode_batch = model.decode_batch

    def broken(jobs):
        raise RuntimeError("the decoder broke")

    monkeypatch.setattr(model, "decode_batch", broken)
    with pytest.raises(StreamError) as e:
        tiny_tts.synthesize(TEXTS[0], VOICE, OPTS[0], engine=engine)
    assert e.value.stage == "mimi" and "decoder broke" in str(e.value)
    monkeypatch.setattr(model, "decode_batch", decode_batch)
    got = tiny_tts.synthesize(TEXTS[3], VOICE, OPTS[3], engine=engine)
    assert np.array_equal(got, tiny_tts.synthesize(TEXTS[3], VOICE, OPTS[3]))


def test_stopping_a_stream_mid_pause_frees_the_decoder_at_once(tiny_tts, engine):
    opts = OPTS[0].replace(max_frames=2, on_no_eos="ignore")
    stream = tiny_tts.open_stream(
        'Hi. <break time="30s"/> There.',
        VOICE,
        opts,
        StreamOptions(ring_capacity_s=0.5),
        engine=engine,
    )
    frames = stream.frames()
    next(frames)
    start = time.monotonic()
    stream.stop()
    assert time.monotonic() - start < 0.5
    assert not stream.is_alive and decoder_threads() == []
