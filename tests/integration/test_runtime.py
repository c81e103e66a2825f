"""The two-thread runtime: ordering, cancellation, errors, concurrency, seams, rates.

No timing thresholds: "first audio before the last latent" is guaranteed structurally by the
bounded queue and ring, and is checked with time stamps, not durations.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tests.conftest import fixture_path, stream_threads
from voxlet import GenerationOptions, StreamError
from voxlet.audio import resample
from voxlet.runtime import StreamOptions
from voxlet.runtime.decoder import group_size

VOICE = str(fixture_path("tiny_voice.safetensors"))


def opts(frames: int, **kw) -> GenerationOptions:
    return GenerationOptions(
        temperature=0.0, eos_threshold=1e9, max_frames=frames, on_no_eos="ignore", **kw
    )


@pytest.fixture(autouse=True)
def no_leaked_threads():
    assert stream_threads() == []
    yield
    assert stream_threads() == []


def test_first_frame_arrives_before_the_last_latent(tiny_tts):
    stream = tiny_tts.open_stream("Hello world.", VOICE, opts(80))
    frames = list(stream.frames())
    assert len(frames) == 80
    assert len(stream.stats.latent_times) == 80
    assert stream.stats.first_audio_at < stream.stats.latent_times[-1]


def test_breaking_out_stops_both_threads(tiny_tts):
    stream = tiny_tts.open_stream("Hello world.", VOICE, opts(500))
    for i, _ in enumerate(stream.frames()):
        if i == 2:
            break
    assert not stream.is_alive
    assert len(stream.stats.latent_times) < 500


def test_stop_from_another_thread(tiny_tts):
    stream = tiny_tts.open_stream("Hello world.", VOICE, opts(5000))
    got = []
    for pcm in stream.frames():
        got.append(pcm)
        if len(got) == 3:
            threading.Thread(target=stream.stop).start()
    assert not stream.is_alive and len(got) < 5000


@pytest.mark.parametrize("fail_at", [1, 4])  # 1: while the other thread waits out the relay
@pytest.mark.parametrize("stage,target", [("flowlm", "flow_lm.step"), ("mimi", "mimi.decode")])
def test_worker_failure_surfaces_in_caller(tiny_tts, monkeypatch, stage, target, fail_at):
    owner, name = target.split(".")
    module = getattr(tiny_tts.network, owner)
    original = getattr(module, name)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise RuntimeError("injected failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)
    with pytest.raises(StreamError) as e:
        list(tiny_tts.stream("Hello world.", VOICE, opts(50)))
    assert e.value.stage == stage
    assert isinstance(e.value.__cause__, RuntimeError)
    assert "injected failure" in str(e.value)


def test_concurrent_streams_match_sequential(tiny_tts):
    texts = ["Hello world.", "A different sentence here.", "Third one, please."]
    expected = [tiny_tts.synthesize(t, VOICE, opts(12, seed=i)) for i, t in enumerate(texts)]
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        results[i] = tiny_tts.synthesize(texts[i], VOICE, opts(12, seed=i))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    for i in range(3):
        np.testing.assert_allclose(results[i], expected[i], atol=1e-5)


def test_long_text_has_one_continuous_decoder(tiny_tts):
    """Chunks play back to back: the audio equals decoding all latents with one decoder."""
    options = opts(4, max_tokens_per_chunk=8)
    text = "One two three. Four five six. Seven eight nine."
    assert len(tiny_tts.chunks(text, options)) == 3
    audio = tiny_tts.synthesize(text, VOICE, options)
    voice = tiny_tts.voice(VOICE)
    latents = torch.cat(list(tiny_tts.latents(text, voice, options)))
    mimi, flow_lm = tiny_tts.network.mimi, tiny_tts.network.flow_lm
    with torch.no_grad():
        state = mimi.init_decoder_state()
        frames = [
            mimi.decode(flow_lm.denormalize(lat).view(1, 1, -1), state).view(-1) for lat in latents
        ]
    expected = torch.cat(frames).numpy()
    expected[:120] *= np.linspace(0, 1, 120, dtype=np.float32)
    assert audio.shape == (12 * 1920,)
    np.testing.assert_allclose(audio, expected, atol=1e-5)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_output_rate_equals_one_shot_resampling(tiny_tts, rate):
    base = tiny_tts.synthesize("Hello world.", VOICE, opts(10))
    frames = list(
        tiny_tts.stream("Hello world.", VOICE, opts(10), StreamOptions(output_rate_hz=rate))
    )
    assert all(len(f) == round(rate * 0.08) for f in frames[:-1])
    np.testing.assert_array_equal(np.concatenate(frames), resample(base, 24000, rate))


def test_speak_with_callback_and_barge_in(tiny_tts):
    got: list[np.ndarray] = []
    speech = tiny_tts.speak("Hello world.", VOICE, opts(10), on_audio=got.append)
    speech.wait(60)
    np.testing.assert_allclose(
        np.concatenate(got), tiny_tts.synthesize("Hello world.", VOICE, opts(10)), atol=1e-6
    )
    stopped = tiny_tts.speak("Hello world.", VOICE, opts(5000), on_audio=lambda pcm: None)
    stopped.stop()
    assert not stopped.is_playing


def test_failing_callback_is_reported_as_sink_error(tiny_tts):
    def explode(pcm):
        raise ValueError("callback broke")

    speech = tiny_tts.speak("Hello world.", VOICE, opts(20), on_audio=explode)
    with pytest.raises(StreamError) as e:
        speech.wait(60)
    assert e.value.stage == "sink" and isinstance(e.value.__cause__, ValueError)


def test_thread_counts_are_options(tiny_tts):
    try:
        frames = list(
            tiny_tts.stream(
                "Hello.", VOICE, opts(3), StreamOptions(flowlm_threads=2, mimi_threads=1)
            )
        )
    finally:
        torch.set_num_threads(1)  # keep the rest of the suite on the goldens' setting
    assert len(frames) == 3
    with pytest.raises(ValueError, match="threads"):
        StreamOptions(mimi_threads=0)


def test_first_frame_is_a_relay_then_both_stages_overlap(tiny_tts, monkeypatch):
    events: list[tuple[str, int]] = []
    for owner, name in (("flow_lm", "step"), ("mimi", "decode")):
        module = getattr(tiny_tts.network, owner)
        original = getattr(module, name)

        def record(*args, _name=name, _original=original, **kwargs):
            events.append((_name, torch.get_num_threads()))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, record)
    try:
        options = StreamOptions(first_frame_threads=2, max_frames_per_decode=1)
        frames = list(tiny_tts.stream("Hello world.", VOICE, opts(30), options))
    finally:
        torch.set_num_threads(1)
    assert len(frames) == 30
    # Step 0 and decode 0 each get both cores, one after the other; then one core each.
    assert events[:3] == [("step", 2), ("decode", 2), ("step", 1)]
    assert {n for _, n in events[3:]} == {1}
    with pytest.raises(ValueError, match="first_frame_threads"):
        StreamOptions(first_frame_threads=0)


def test_grouped_decoding_matches_framewise_and_repeats_exactly(tiny_tts):
    framewise = tiny_tts.synthesize(
        "Hello world.", VOICE, opts(30), StreamOptions(max_frames_per_decode=1)
    )
    grouped = [
        tiny_tts.synthesize("Hello world.", VOICE, opts(30), StreamOptions(max_frames_per_decode=8))
        for _ in range(2)
    ]
    np.testing.assert_allclose(grouped[0], framewise, atol=2e-5)
    np.testing.assert_array_equal(grouped[0], grouped[1])  # grouping ignores thread timing


def test_decode_groups_grow_from_one_frame():
    sizes, decoded = [], 0
    while decoded < 40:
        sizes.append(group_size(decoded, 8))
        decoded += sizes[-1]
    assert sizes == [1, 1, 2, 4, 8, 8, 8, 8]
    assert [group_size(n, 1) for n in range(6)] == [1] * 6
    assert [group_size(n, 3) for n in (2, 4, 100)] == [2, 3, 3]


def test_unstarted_or_dropped_iterators_leave_no_threads(tiny_tts):
    import gc

    unstarted = tiny_tts.stream("Hello world.", VOICE, opts(500))
    assert stream_threads() == []  # nothing runs until the first frame is asked for
    del unstarted
    started = tiny_tts.stream("Hello world.", VOICE, opts(500))
    next(started)
    assert stream_threads() != []
    del started  # dropping the iterator closes it, which stops and joins both threads
    gc.collect()
    assert stream_threads() == []
    with pytest.raises(Exception, match="cannot be empty"):
        tiny_tts.stream("   ", VOICE)  # bad input still fails at the call


def test_first_frame_relay_uses_no_more_threads_than_cores(monkeypatch):
    import os

    from voxlet.runtime import stream

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert stream._usable_cores(StreamOptions()) == 2
    assert stream._usable_cores(StreamOptions(flowlm_threads=2, mimi_threads=2)) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert stream._usable_cores(StreamOptions()) == 1


def test_a_finished_or_stopped_stream_returns_its_freed_heap(tiny_tts, monkeypatch):
    import voxlet.runtime.decoder as decoder_module

    calls: list[str] = []

    def release() -> None:
        calls.append(threading.current_thread().name)

    monkeypatch.setattr(decoder_module, "release_free_heap", release)
    stream = tiny_tts.open_stream("Hello world.", VOICE, opts(6))
    assert len(list(stream.frames())) == 6
    assert calls == ["voxlet-decoder"]  # once, by the decoder, after its last frame
    stream = tiny_tts.open_stream("Hello world.", VOICE, opts(5000))
    next(stream.frames())
    stream.stop()
    assert calls == ["voxlet-decoder"] * 2


def test_release_free_heap_is_safe_to_call_any_time():
    from voxlet._process import release_free_heap

    blocks = [np.ones(300_000) for _ in range(20)]  # heap blocks, some freed, some held
    del blocks[::2]
    release_free_heap()
    assert all(b.sum() == 300_000 for b in blocks)  # what is held is untouched
