"""`voxlet serve` on the torch-free model: the OpenAI route, a voice from the voices folder, a
WAV of whole 80 ms frames back."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile

from tests.conftest import fixture_path
from tests.serve.conftest import serve
from voxlet import TTS
from voxlet.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def free() -> TTS:
    return TTS.load(config=fixture_path("tiny_config.yaml"), backend="torch-free")


def test_the_openai_route_speaks_with_the_torch_free_model(free, voices_dir):
    assert free.network is None
    settings = ServeSettings(voices_dir=voices_dir, max_sessions=2, max_waiting=1, queue_wait_s=2)
    for running in serve(free, settings):
        body = {
            "model": "tts-1",
            "input": "Hello there.",
            "voice": "tiny",
            "response_format": "wav",
        }
        reply = httpx.post(f"{running.url}/v1/audio/speech", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        audio, rate = soundfile.read(io.BytesIO(reply.content), dtype="float32")
        assert rate == 24_000 and len(audio) >= 1920 and len(audio) % 1920 == 0
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
        running.wait_idle()
