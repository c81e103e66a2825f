"""The OpenAI-compatible routes, through the official `openai` SDK and a raw SSE reader: every
format decodes, streaming streams, and every bad request is a clear 4xx the server survives."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import openai
import pytest
import soundfile

TEXT = "Hello there. This is voxlet, serving speech."


@pytest.fixture(scope="module")
def client(running):
    return openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)


def decode(data: bytes, fmt: str) -> np.ndarray:
    if fmt == "pcm":
        assert len(data) % 2 == 0
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768
    audio, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == 24_000
    return audio


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "opus", "flac"])
def test_the_sdk_gets_every_format_back_decodable(client, fmt):
    response = client.audio.speech.create(
        model="tts-1", voice="tiny", input=TEXT, response_format=fmt
    )
    audio = decode(response.content, fmt)
    assert len(audio) > 0.5 * 24_000 and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_the_sdk_streams_wav_as_it_is_made(client):
    chunks = []
    with client.audio.speech.with_streaming_response.create(
        model="anything-at-all", voice="tiny", input=TEXT, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers["cache-control"] == "no-cache"
        for chunk in response.iter_bytes():
            chunks.append(chunk)
    assert len(chunks) > 2  # frames as they came, not one body
    audio = decode(b"".join(chunks), "wav")
    assert len(audio) > 0.5 * 24_000


def test_the_speed_is_honoured(client):
    slow = decode(
        client.audio.speech.create(
            model="tts-1",
            voice="tiny",
            input="Hello.",
            response_format="pcm",
            speed=0.5,
            extra_body={"normalize": False},
        ).content,
        "pcm",
    )
    assert len(slow) % 2 == 0 and len(slow) > 0


def test_sse_sends_deltas_then_done(running):
    body = {"input": TEXT, "voice": "tiny", "response_format": "pcm", "stream_format": "sse"}
    events = []
    with httpx.stream("POST", running.url + "/v1/audio/speech", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["input_tokens"] > 0
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(events) > 3 and len(pcm) > 0.5 * 24_000 * 2


def test_models_voices_and_health(running, client):
    assert [m.id for m in client.models.list().data] == [running.server.model_name]
    voices = httpx.get(running.url + "/v1/voices").json()
    assert sorted(voices["voices"]) == ["second", "tiny"]  # notes.txt is no voice
    assert httpx.get(running.url + "/v1/audio/voices").json() == voices
    assert httpx.get(running.url + "/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"input": "", "voice": "tiny"}, 400, "input: must be a non-empty string"),
        ({"input": "   ", "voice": "tiny"}, 400, "input"),
        ({"input": "x" * 4097, "voice": "tiny"}, 400, "more than 4096"),
        ({"input": "Hi.", "voice": "nobody"}, 400, "unknown; this server offers"),
        ({"input": "Hi.", "voice": "../tiny"}, 400, "unknown"),
        ({"input": "Hi.", "voice": "/etc/passwd"}, 400, "unknown"),
        ({"input": "Hi.", "voice": "tiny", "response_format": "ogg"}, 400, "response_format"),
        ({"input": "Hi.", "voice": "tiny", "response_format": "aac"}, 400, "not supported here"),
        ({"input": "Hi.", "voice": "tiny", "speed": 9}, 400, "speed: must be 0.25..4.0"),
        ({"input": "Hi.", "voice": "tiny", "speed": "fast"}, 400, "speed: must be a number"),
        ({"input": "Hi.", "voice": "tiny", "stream_format": "x"}, 400, "stream_format"),
        ({"input": '<break time="1s"/>', "voice": "tiny"}, 400, "cannot be empty"),
        ({"input": "Hi <bad/>", "voice": "tiny"}, 400, "unsupported markup"),
        ({"input": 5, "voice": "tiny"}, 400, "input"),
    ],
)
def test_bad_requests_are_clear_4xx_in_openai_shape(running, body, status, needle):
    r = httpx.post(running.url + "/v1/audio/speech", json=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_malformed_bodies_and_routes(running):
    url = running.url + "/v1/audio/speech"
    assert httpx.post(url, content=b"{not json", timeout=10).status_code == 400
    assert httpx.post(url, content=b"[1, 2]", timeout=10).status_code == 400
    big = httpx.post(url, content=b"x" * 200_000, timeout=10)
    assert big.status_code == 413 and "more than" in big.json()["error"]["message"]
    missing = httpx.get(running.url + "/v1/nothing", timeout=10)
    assert missing.status_code == 404 and "error" in missing.json()
    assert httpx.get(url, timeout=10).status_code == 405


def test_the_sdk_sees_errors_as_its_own_exceptions(client):
    with pytest.raises(openai.BadRequestError, match="not supported here"):
        client.audio.speech.create(model="tts-1", voice="tiny", input="Hi.", response_format="aac")
    # and the server still serves
    ok = client.audio.speech.create(model="tts-1", voice="tiny", input="Hi.", response_format="wav")
    assert len(decode(ok.content, "wav")) > 0
