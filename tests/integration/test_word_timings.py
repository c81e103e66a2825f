"""Word timings through the runtime, on the test model: every written word once, in order,
within the audio, on the output timeline (pauses and speed included), handed out before the
audio after its chunk's speech, and the audio unchanged by asking for them."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from tests.conftest import fixture_path
from tests.integration.cli_helpers import MODEL, run_voxlet
from voxlet import ConfigError, GenerationOptions, StreamError
from voxlet.runtime import StreamOptions
from voxlet.runtime.word_clock import WordTiming

VOICE = str(fixture_path("tiny_voice.safetensors"))
# EOS is found on the test model; a short max_tokens makes several chunks
OPTS = GenerationOptions(seed=3, max_tokens_per_chunk=10, on_no_eos="ignore")
TEXT = "Prof. Lee paid $4.50 at 7:45 on 1999-03-14. Then he went home, happy. It cost $5 million!"


def written_words(text: str) -> list[str]:
    return re.sub(r"<[^>]*>", " ", text).split()


def check(words: list[WordTiming], text: str, audio_s: float) -> None:
    assert [w.word for w in words] == written_words(text)
    previous = 0.0
    for w in words:
        assert previous <= w.start_s <= w.end_s <= audio_s + 1e-9
        previous = w.end_s
    assert sum(w.end_s - w.start_s for w in words) > 0.3 * audio_s  # not all points


def test_synthesize_gives_every_written_word_once_in_order_within_the_audio(tiny_tts):
    audio, words = tiny_tts.synthesize(TEXT, VOICE, OPTS, word_timings=True)
    assert len(tiny_tts.chunks(TEXT, OPTS)) >= 4
    check(words, TEXT, len(audio) / 24_000)
    assert all(isinstance(w, tuple) and len(w) == 3 for w in words)  # (word, start_s, end_s)


def test_asking_for_word_timings_changes_no_sample(tiny_tts):
    plain = tiny_tts.synthesize(TEXT, VOICE, OPTS)
    audio, _ = tiny_tts.synthesize(TEXT, VOICE, OPTS, word_timings=True)
    assert np.array_equal(plain, audio)


def test_a_pause_moves_the_words_after_it_by_its_length(tiny_tts):
    template = 'Hello there, my friend. <break time="{}"/> See you soon, I hope.'
    _, without = tiny_tts.synthesize(template.format("0ms"), VOICE, OPTS, word_timings=True)
    audio, with_pause = tiny_tts.synthesize(template.format("1.5s"), VOICE, OPTS, word_timings=True)
    check(with_pause, template, len(audio) / 24_000)
    n_before = 4
    for a, b in zip(without, with_pause, strict=True):
        shift = 0.0 if without.index(a) < n_before else 1.5
        assert b.start_s == pytest.approx(a.start_s + shift)
        assert b.end_s == pytest.approx(a.end_s + shift)


def test_speed_scales_the_timeline(tiny_tts):
    _, at_1 = tiny_tts.synthesize(TEXT, VOICE, OPTS, word_timings=True)
    audio, at_2 = tiny_tts.synthesize(TEXT, VOICE, OPTS.replace(speed=2.0), word_timings=True)
    check(at_2, TEXT, len(audio) / 24_000)
    for a, b in zip(at_1, at_2, strict=True):
        assert b.start_s == pytest.approx(a.start_s / 2) and b.end_s == pytest.approx(a.end_s / 2)


def test_the_output_rate_changes_no_timing(tiny_tts):
    _, at_24 = tiny_tts.synthesize(TEXT, VOICE, OPTS, word_timings=True)
    audio, at_48 = tiny_tts.synthesize(
        TEXT, VOICE, OPTS, StreamOptions(output_rate_hz=48_000), word_timings=True
    )
    assert at_48 == at_24
    check(at_48, TEXT, len(audio) / 48_000)


def test_each_word_comes_before_the_audio_after_its_chunk(tiny_tts):
    """Words come in batches, one per chunk (or a few): each batch is yielded before any audio
    past the end of the last word it holds."""
    samples = 0
    batch: list[WordTiming] = []
    seen: list[WordTiming] = []
    for item in tiny_tts.stream(TEXT, VOICE, OPTS, word_timings=True):
        if isinstance(item, WordTiming):
            batch.append(item)
            continue
        if batch:
            assert samples < max(w.end_s for w in batch) * 24_000
            seen.extend(batch)
            batch = []
        samples += len(item)
    seen.extend(batch)
    check(seen, TEXT, samples / 24_000)


def test_text_still_being_written_gets_the_same_timings(tiny_tts):
    text = "Hello there. It costs $5 today! How are you?"
    _, whole = tiny_tts.synthesize(text, VOICE, OPTS, word_timings=True)
    fragments = [text[i : i + 3] for i in range(0, len(text), 3)]
    audio, streamed = tiny_tts.synthesize(fragments, VOICE, OPTS, word_timings=True)
    check(streamed, text, len(audio) / 24_000)
    if len(audio) == len(tiny_tts.synthesize(text, VOICE, OPTS)):  # the same chunks
        assert streamed == whole


def test_markup_is_no_word_and_plain_frames_stay_plain(tiny_tts):
    text = '<speak>Ready? <break time="300ms"/> Go!</speak>'
    _audio, words = tiny_tts.synthesize(text, VOICE, OPTS, word_timings=True)
    assert [w.word for w in words] == ["Ready?", "Go!"]
    assert words[1].start_s >= words[0].end_s + 0.3
    assert all(isinstance(x, np.ndarray) for x in tiny_tts.stream(text, VOICE, OPTS))


def test_without_normalising_the_words_are_still_the_written_ones(tiny_tts):
    opts = OPTS.replace(normalize=False)
    audio, words = tiny_tts.synthesize(TEXT, VOICE, opts, word_timings=True)
    check(words, TEXT, len(audio) / 24_000)


def test_bad_requests_fail_plainly(tiny_tts):
    with pytest.raises(ConfigError, match="word_timings"):
        tiny_tts.synthesize("Hi.", VOICE, OPTS, word_timings="yes")  # type: ignore[call-overload]

    def failing():
        yield "Hello there. "
        raise RuntimeError("the language model went away")

    with pytest.raises(StreamError, match="went away"):
        tiny_tts.synthesize(failing(), VOICE, OPTS, word_timings=True)


def test_stopping_leaves_no_thread_and_drops_the_rest(tiny_tts):
    stream = tiny_tts.open_stream(TEXT, VOICE, OPTS, word_timings=True)
    items = stream.items()
    next(items)
    stream.stop()
    assert list(items) == []
    assert not stream.is_alive


def test_cli_writes_json_vtt_and_srt(tmp_path):
    text = "I paid $4.50. See you at 7:45!"
    wav = str(tmp_path / "a.wav")
    for suffix in ("json", "vtt", "srt"):
        out = tmp_path / f"words.{suffix}"
        result = run_voxlet("say", text, *MODEL, "-q", "-o", wav, "--word-timings", str(out))
        assert result.returncode == 0, result.stderr.decode()
        body = out.read_text(encoding="utf-8")
        if suffix == "json":
            rows = json.loads(body)
            assert [r["word"] for r in rows] == text.split()
            assert all(0 <= r["start"] <= r["end"] for r in rows)
        else:
            cue = r"(\d\d:\d\d:\d\d[.,]\d{3}) --> (\d\d:\d\d:\d\d[.,]\d{3})\n(.+)"
            cues = re.findall(cue, body)
            assert [c[2] for c in cues] == text.split()
            assert body.startswith("WEBVTT") == (suffix == "vtt")
            assert ("," in cues[0][0]) == (suffix == "srt")


def test_cli_refuses_bad_timings_targets_and_leaves_files_alone(tmp_path):
    old = tmp_path / "words.json"
    old.write_text("mine")
    wav = str(tmp_path / "a.wav")
    missing = str(tmp_path / "missing.safetensors")
    result = run_voxlet(
        "say", "Hello.", *MODEL, "--voice", missing, "-o", wav, "--word-timings", str(old)
    )
    assert result.returncode != 0 and old.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["words.json"]  # no temporary left
    for target, message in (("-", "stdout carries only audio"), (wav, "audio output")):
        result = run_voxlet("say", "Hello.", *MODEL, "-o", wav, "--word-timings", target)
        stderr = result.stderr.decode()
        assert result.returncode != 0 and message in stderr
        assert len(stderr.strip().splitlines()) == 1


def test_speak_calls_on_word_as_each_word_starts_playing(tiny_tts):
    handed: list[int] = []
    called: list[tuple[WordTiming, int]] = []

    def on_audio(pcm):
        handed.append(len(pcm))
        time.sleep(0.005)  # a sink slower than the model, so words are due while it plays

    speech = tiny_tts.speak(
        TEXT, VOICE, OPTS, on_audio=on_audio, on_word=lambda w: called.append((w, sum(handed)))
    )
    speech.wait(60)
    check([w for w, _ in called], TEXT, sum(handed) / 24_000)
    for word, samples_handed in called:
        assert samples_handed >= word.start_s * 24_000  # never before its audio is out


def test_a_failing_on_word_stops_the_speech_and_is_reported(tiny_tts):
    def explode(word):
        raise ValueError("caption broke")

    speech = tiny_tts.speak(TEXT, VOICE, OPTS, on_audio=lambda pcm: None, on_word=explode)
    with pytest.raises(StreamError, match="on_word: ValueError: caption broke") as e:
        speech.wait(60)
    assert e.value.stage == "sink"
    assert not speech.is_playing


def test_no_word_is_called_after_stop(tiny_tts):
    called: list[WordTiming] = []
    speech = tiny_tts.speak(
        TEXT,
        VOICE,
        OPTS.replace(max_frames=2000),
        on_audio=lambda pcm: time.sleep(0.02),
        on_word=called.append,
    )
    time.sleep(0.2)
    speech.stop()
    n = len(called)
    time.sleep(0.1)
    assert len(called) == n and not speech.is_playing
