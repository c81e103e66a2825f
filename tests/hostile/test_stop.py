"""Stop means stop: no audio after it, back within about a frame, nothing left running, and a
stream nobody reads or stops does not keep the process alive."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from tests.conftest import fixture_path, stream_threads
from voxlet import GenerationOptions
from voxlet.runtime import StreamOptions
from voxlet.runtime.decoder import ROOM_MARGIN_FRAMES

VOICE = str(fixture_path("tiny_voice.safetensors"))
LONG = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=2000, on_no_eos="ignore")


def wait_until(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_stopped_stream_hands_out_nothing_more(tiny_tts):
    stream = tiny_tts.open_stream("Hello world.", VOICE, LONG)
    frames = stream.frames()
    next(frames)
    wait_until(lambda: stream.pipeline.available_frames >= 10 * 1920)  # audio is buffered
    stream.stop()
    assert list(frames) == []
    assert list(stream.frames()) == []
    assert not stream.is_alive and stream_threads() == []


def test_speech_stop_with_a_slow_callback_returns_at_once_and_calls_no_more(tiny_tts):
    calls: list[float] = []
    entered = threading.Event()

    def slow(pcm) -> None:
        calls.append(time.monotonic())
        entered.set()
        time.sleep(0.5)

    speech = tiny_tts.speak("Hello world.", VOICE, LONG, on_audio=slow)
    assert entered.wait(30)
    wait_until(lambda: speech.stream.pipeline.available_frames >= 10 * 1920)
    start = time.monotonic()
    speech.stop()
    stopped_at = time.monotonic()
    assert stopped_at - start < 0.4  # not the 0.5 s call in progress, nor the buffered audio
    time.sleep(1.2)  # the call in progress ends; no other may begin
    assert all(t < stopped_at for t in calls) and len(calls) <= 2
    assert not speech.is_playing
    assert not [n for n in stream_threads() if n != "voxlet-sink"]
    wait_until(lambda: stream_threads() == [])


def test_a_callback_may_stop_its_own_speech(tiny_tts):
    got = []
    holder: dict = {}

    def on_audio(pcm) -> None:
        got.append(pcm)
        if len(got) == 3:
            holder["speech"].stop()

    holder["speech"] = tiny_tts.speak("Hello world.", VOICE, LONG, on_audio=on_audio)
    wait_until(lambda: not holder["speech"].is_playing)
    assert len(got) == 3
    wait_until(lambda: stream_threads() == [])


def test_an_unread_stream_does_not_keep_the_interpreter_alive():
    code = f"""
from voxlet import TTS, GenerationOptions
tts = TTS.load(config={str(fixture_path("tiny_config.yaml"))!r},
               weights={str(fixture_path("tiny_model.safetensors"))!r},
               tokenizer={str(fixture_path("tokenizer.model"))!r})
opts = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=5000, on_no_eos="ignore")
stream = tts.open_stream("Hello world.", {VOICE!r}, opts)
stream.wait_for_audio(1920)
print("opened", flush=True)
"""  # and the script ends, never reading nor stopping the stream
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"opened\n"
    assert time.monotonic() - start < 30
    assert b"Traceback" not in r.stderr and b"Fatal" not in r.stderr


def test_stop_returns_within_about_a_frame_while_the_ring_is_full(tiny_tts):
    options = StreamOptions(ring_capacity_s=0.5, max_frames_per_decode=1)
    stream = tiny_tts.open_stream("Hello world.", VOICE, LONG, options)
    # the decoder holds the stream's next frame until the ring has room for it
    wait_until(lambda: stream.pipeline.free_frames < 1920 + ROOM_MARGIN_FRAMES)
    start = time.monotonic()
    stream.stop()
    assert time.monotonic() - start < 0.5
    assert not stream.is_alive


def test_stop_during_a_long_pause_returns_within_about_a_frame(tiny_tts):
    opts = GenerationOptions(temperature=0.0, max_frames=2, on_no_eos="ignore")
    options = StreamOptions(ring_capacity_s=0.5)
    stream = tiny_tts.open_stream('Hi. <break time="30s"/> There.', VOICE, opts, options)
    frames = stream.frames()
    next(frames), next(frames)  # "Hi." is two frames
    assert not next(frames).any() and not next(frames).any()  # into the silence
    wait_until(lambda: stream.pipeline.free_frames < 1920)  # the pause waits for ring space
    start = time.monotonic()
    stream.stop()
    assert time.monotonic() - start < 0.5
    assert not stream.is_alive and stream_threads() == []
