"""A real voxlet server (uvicorn, loopback, a free port) on the tiny model, in this process."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from tests.conftest import fixture_path
from voxlet.serve.app import Server, create_app
from voxlet.serve.settings import ServeSettings


@dataclass
class Running:
    url: str
    server: Server

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/audio/speech/stream"

    def gauge(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")

    def wait_idle(self, timeout_s: float = 5.0) -> float:
        """Seconds until no session is active (fails after timeout_s)."""
        start = time.monotonic()
        while self.server.admission.active or self.server.admission.waiting:
            assert time.monotonic() - start < timeout_s, "sessions still active"
            time.sleep(0.01)
        return time.monotonic() - start


def serve(tts, settings: ServeSettings, warm: bool = False, before=None) -> Iterator[Running]:
    app = create_app(tts, settings, warm=warm)
    if before is not None:
        before(app.state.server)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(f"http://127.0.0.1:{port}", app.state.server)
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "server did not shut down"


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices")
    shutil.copy(fixture_path("tiny_voice.safetensors"), folder / "tiny.safetensors")
    shutil.copy(fixture_path("tiny_voice.safetensors"), folder / "second.safetensors")
    (folder / "notes.txt").write_text("not a voice")
    return folder


@pytest.fixture(scope="module")
def running(tiny_tts, voices_dir) -> Iterator[Running]:
    settings = ServeSettings(voices_dir=voices_dir, max_sessions=3, max_waiting=2, queue_wait_s=2)
    yield from serve(tiny_tts, settings)
