"""Sessions: a client that leaves frees its session within a frame or so, a disconnect storm
leaves nothing behind, admission says "busy" past its limits, the API key is checked, and
/health is 503 until the warm-up is done."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.conftest import stream_threads
from tests.serve.conftest import serve
from voxlet.serve.settings import ServeSettings

LONG = " ".join(f"This is sentence number {i}, one of many." for i in range(120))  # ~4 KB


def start_and_drop(url: str, nbytes: int = 4000) -> int:
    """Starts a long streaming request, reads a little, and hangs up; the status."""
    body = {"input": LONG[:4000], "voice": "tiny", "response_format": "pcm"}
    with httpx.stream("POST", url + "/v1/audio/speech", json=body, timeout=30) as r:
        if r.status_code != 200:
            return r.status_code
        got = 0
        for chunk in r.iter_bytes():
            got += len(chunk)
            if got >= nbytes:
                break
    return 200


def voxlet_threads() -> int:
    return len(stream_threads())


def test_a_client_that_leaves_frees_its_session(running):
    assert start_and_drop(running.url) == 200
    assert running.wait_idle(5.0) < 1.0
    assert running.gauge("voxlet_sessions_active") == 0


def test_a_disconnect_storm_leaves_no_session_or_thread(running):
    before = voxlet_threads()
    statuses: list[int] = []
    clients = [
        threading.Thread(target=lambda: statuses.append(start_and_drop(running.url, 2000)))
        for _ in range(8)
    ]
    for c in clients:
        c.start()
    for c in clients:
        c.join(60)
    assert 200 in statuses and set(statuses) <= {200, 429}  # past the queue: busy
    running.wait_idle(10.0)
    deadline = time.monotonic() + 5
    while voxlet_threads() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert voxlet_threads() <= before
    # raw sockets that send half a request and vanish
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", int(running.url.rsplit(":", 1)[1])), timeout=5)
        s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        s.close()
    r = httpx.post(running.url + "/v1/audio/speech", json={"input": "Still here.", "voice": "tiny"})
    assert r.status_code == 200


@pytest.fixture(scope="module")
def narrow(tiny_tts, voices_dir):
    settings = ServeSettings(voices_dir=voices_dir, max_sessions=1, max_waiting=1, queue_wait_s=0.3)
    yield from serve(tiny_tts, settings)


def test_past_the_limits_it_is_busy_and_then_serves_again(narrow):
    holding = threading.Event()
    release = threading.Event()

    def hold():  # more audio (0.25x) than the loopback socket buffers hold: the session waits
        body = {"input": LONG[:4000], "voice": "tiny", "response_format": "pcm", "speed": 0.25}
        with httpx.stream("POST", narrow.url + "/v1/audio/speech", json=body, timeout=30) as r:
            for _ in r.iter_bytes():
                holding.set()
                release.wait(20)
                break

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(20)
    small = {"input": "Hi.", "voice": "tiny"}
    # one may wait (0.3 s, then busy); while it waits, a third is turned away at once
    waiter = threading.Thread(
        target=lambda: httpx.post(narrow.url + "/v1/audio/speech", json=small)
    )
    waiter.start()
    deadline = time.monotonic() + 5
    while narrow.server.admission.waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    third = httpx.post(narrow.url + "/v1/audio/speech", json=small, timeout=10)
    assert third.status_code == 429 and "busy" in third.json()["error"]["message"]
    waiter.join(10)
    timed_out = httpx.post(narrow.url + "/v1/audio/speech", json=small, timeout=10)
    assert timed_out.status_code == 429 and "within 0.3 s" in timed_out.json()["error"]["message"]
    release.set()
    holder.join(30)
    narrow.wait_idle(5)
    assert httpx.post(narrow.url + "/v1/audio/speech", json=small, timeout=30).status_code == 200


@pytest.fixture(scope="module")
def keyed(tiny_tts, voices_dir):
    yield from serve(tiny_tts, ServeSettings(voices_dir=voices_dir, api_key="s3cret"))


def test_the_api_key_is_required_where_set(keyed):
    url = keyed.url + "/v1/audio/speech"
    body = {"input": "Hi.", "voice": "tiny", "response_format": "wav"}
    assert httpx.post(url, json=body).status_code == 401
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(keyed.url + "/v1/models").status_code == 401
    assert httpx.get(keyed.url + "/health").status_code == 200  # for load balancers
    good = httpx.post(url, json=body, headers={"Authorization": "Bearer s3cret"})
    assert good.status_code == 200 and good.content[:4] == b"RIFF"


def test_health_is_503_until_warm(tiny_tts, voices_dir):
    gate = threading.Event()

    def slow_warm_up(server):
        real = server.warm_up

        def warm_up():
            gate.wait(20)
            real()

        server.warm_up = warm_up

    settings = ServeSettings(voices_dir=voices_dir)
    for running in serve(tiny_tts, settings, warm=True, before=slow_warm_up):
        assert httpx.get(running.url + "/health").status_code == 503
        gate.set()
        deadline = time.monotonic() + 20
        while httpx.get(running.url + "/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="max_sessions"):
        ServeSettings(max_sessions=0)
    with pytest.raises(ValueError, match="not a folder"):
        ServeSettings(voices_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="api_key"):
        ServeSettings(api_key=" ")
