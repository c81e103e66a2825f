"""The WebSocket route through the `websockets` client: text in fragments, audio and word
timings out, flush / end / cancel, bad messages answered without closing, idle connections
closed, the API key checked."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.serve.conftest import serve
from voxlet.serve.settings import ServeSettings


def send(ws, **message) -> None:
    ws.send(json.dumps(message))


def receive_until(ws, last: str, timeout_s: float = 30.0) -> tuple[list[dict], int]:
    """JSON messages up to and including one of type `last`, and the audio bytes between."""
    events, audio = [], 0
    deadline = time.monotonic() + timeout_s
    while True:
        message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(message, bytes):
            assert len(message) % 2 == 0
            audio += len(message)
            continue
        event = json.loads(message)
        events.append(event)
        if event["type"] == last:
            return events, audio


def words(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "word"]


def test_text_in_fragments_gives_audio_and_every_word(running):
    text = "Hello there, my friend. It costs $5 today! See you at 7:45."
    with connect(running.ws_url) as ws:
        send(ws, type="setup", voice="tiny")
        ready = json.loads(ws.recv(timeout=10))
        assert ready == {
            "type": "ready",
            "sample_rate": 24000,
            "format": "pcm_s16le",
            "frame_samples": 1920,
            "voice": "tiny",
        }
        for i in range(0, len(text), 4):
            send(ws, type="text", text=text[i : i + 4])
        send(ws, type="end")
        events, audio = receive_until(ws, "done")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    said = words(events)
    assert [w["word"] for w in said] == text.split()
    assert audio > 0.5 * 24000 * 2
    for a, b in itertools.pairwise(said):
        assert a["start_s"] <= a["end_s"] <= b["start_s"] <= b["end_s"]
    assert said[-1]["end_s"] <= audio / 2 / 24000 + 1e-6
    assert [e["type"] for e in events if e["type"] != "word"] == ["done"]


def test_flush_speaks_an_open_sentence_and_the_timeline_runs_on(running):
    with connect(running.ws_url) as ws:  # no setup: the default voice
        send(ws, type="text", text="An open sentence without an end")
        send(ws, type="flush")
        first, audio_1 = receive_until(ws, "flushed")
        assert first[0]["type"] == "ready"
        send(ws, type="text", text="And a second one.")
        send(ws, type="end")
        second, audio_2 = receive_until(ws, "done")
    assert [w["word"] for w in words(first)] == "An open sentence without an end".split()
    assert [w["word"] for w in words(second)] == "And a second one.".split()
    assert words(second)[0]["start_s"] >= audio_1 / 2 / 24000 - 1e-6
    assert audio_1 > 0 and audio_2 > 0


def test_cancel_stops_at_once_and_the_connection_goes_on(running):
    long = " ".join(f"Sentence {i} goes on for a while." for i in range(100))
    with connect(running.ws_url) as ws:
        send(ws, type="setup", voice="tiny", speed=0.25)
        ws.recv(timeout=10)
        send(ws, type="text", text=long)
        send(ws, type="flush")
        while not isinstance(ws.recv(timeout=10), bytes):
            pass  # audio is coming
        send(ws, type="cancel")
        events, _ = receive_until(ws, "cancelled")
        assert "flushed" not in [e["type"] for e in events]
        assert running.wait_idle(2.0) < 1.0
        send(ws, type="text", text="Back again.")
        send(ws, type="end")
        events, audio = receive_until(ws, "done")
    assert [w["word"] for w in words(events)] == ["Back", "again."] and audio > 0


def test_a_client_that_vanishes_frees_its_session(running):
    with connect(running.ws_url) as ws:
        send(ws, type="setup", voice="tiny", speed=0.25)
        send(ws, type="text", text=" ".join(["A long text to speak."] * 50))
        send(ws, type="flush")
        while not isinstance(ws.recv(timeout=10), bytes):
            pass
        ws.socket.close()  # gone, without a closing handshake
    assert running.wait_idle(3.0) < 1.5


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", "bad_message"),
        (json.dumps({"type": "shout"}), "bad_message"),
        (json.dumps({"type": "text", "text": 5}), "bad_message"),
        (json.dumps({"type": "setup", "voice": "../tiny"}), "unknown_voice"),
        (json.dumps({"type": "setup", "speed": 10}), "bad_message"),
        (b"\x00\x01", "bad_message"),
    ],
)
def test_bad_messages_get_an_error_and_the_connection_stays(running, message, code):
    with connect(running.ws_url) as ws:
        ws.send(message)
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["code"] == code and error["message"]
        send(ws, type="text", text="Still fine.")
        send(ws, type="end")
        _events, audio = receive_until(ws, "done")
        assert audio > 0


def test_setup_only_first_and_empty_text_is_an_error(running):
    with connect(running.ws_url) as ws:
        send(ws, type="text", text="   ")
        send(ws, type="setup", voice="tiny")
        events, _ = receive_until(ws, "error")
        assert "only as the first message" in events[-1]["message"]
        send(ws, type="flush")
        events, _ = receive_until(ws, "flushed")
        errors = [e for e in events if e["type"] == "error"]
        assert errors and "cannot be empty" in errors[0]["message"]


@pytest.fixture(scope="module")
def strict(tiny_tts, voices_dir):
    settings = ServeSettings(voices_dir=voices_dir, api_key="k3y", idle_timeout_s=0.5)
    yield from serve(tiny_tts, settings)


def test_idle_connections_are_closed_and_the_key_is_checked(strict):
    with pytest.raises(InvalidStatus) as refused:
        connect(strict.ws_url)
    assert refused.value.response.status_code == 401
    assert b"invalid_api_key" in refused.value.response.body
    with connect(strict.ws_url + "?api_key=k3y") as ws:
        start = time.monotonic()
        with pytest.raises(ConnectionClosed) as idle:
            ws.recv(timeout=5)
        assert idle.value.rcvd.reason == "idle" and time.monotonic() - start < 2
    headers = {"Authorization": "Bearer k3y"}
    with connect(strict.ws_url, additional_headers=headers) as ws:
        send(ws, type="text", text="Keyed.")
        send(ws, type="end")
        assert receive_until(ws, "done")[1] > 0
