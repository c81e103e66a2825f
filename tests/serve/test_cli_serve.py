"""`voxlet serve` as a user starts it: loopback by default, serves, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time

import httpx
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from tests.conftest import fixture_path
from tests.integration.cli_helpers import VOXLET
from voxlet.cli import build_parser

MODEL = [
    "--config",
    str(fixture_path("tiny_config.yaml")),
    "--weights",
    str(fixture_path("tiny_model.safetensors")),
    "--tokenizer",
    str(fixture_path("tokenizer.model")),
]


def test_it_binds_to_loopback_by_default():
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.api_key is None


async def describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        event = await asyncio.wait_for(client.read_event(), 10)
        assert event is not None
        return Info.from_event(event)


def test_serve_speaks_and_stops_on_sigterm(tmp_path):
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "tiny.safetensors").write_bytes(fixture_path("tiny_voice.safetensors").read_bytes())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        wyoming_port = s.getsockname()[1]
    wyoming = ["--wyoming", f"tcp://127.0.0.1:{wyoming_port}"]
    proc = subprocess.Popen(
        [*VOXLET, "serve", "--port", "0", "--voices", str(voices), *wyoming, *MODEL],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "server exited before listening"
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url is not None
        while httpx.get(url + "/health").status_code != 200:  # warm-up
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.post(
            url + "/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": "Hello from the server.",
                "voice": "tiny",
                "response_format": "wav",
            },
            timeout=30,
        )
        assert r.status_code == 200 and r.content[:4] == b"RIFF"
        assert asyncio.run(describe(wyoming_port)).tts[0].supports_synthesize_streaming
        # a stream in flight when the signal comes: shut down within the graceful timeout
        body = {"input": "Long. " * 600, "voice": "tiny", "response_format": "pcm", "speed": 0.25}
        with httpx.stream("POST", url + "/v1/audio/speech", json=body, timeout=30) as streaming:
            next(streaming.iter_bytes())
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 128 + signal.SIGTERM
        assert time.monotonic() - start < 10
        assert proc.stdout is not None and proc.stdout.read() == ""  # nothing on stdout
    finally:
        proc.kill()
        proc.wait()
