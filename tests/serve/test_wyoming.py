"""Wyoming through the `wyoming` package's own client: describe, one-shot and streamed
synthesis (as Home Assistant sends it), errors, and a client that leaves."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from voxlet.serve import wyoming
from voxlet.serve.app import create_app
from voxlet.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def wyoming_server(tiny_tts, voices_dir):
    app = create_app(tiny_tts, ServeSettings(voices_dir=voices_dir), warm=False)
    server = app.state.server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}

    async def main():
        holder["wy"] = await wyoming.start(f"tcp://127.0.0.1:{port}", server)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(main(), loop).result(10)
    assert started.is_set()
    yield port, server, loop

    async def stop():  # the server, then its handlers' tasks to their end (streams stopped)
        await holder["wy"].stop()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    server.engine.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def exchange(port: int, events, until: str) -> list:
    got = []
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event.event())
        while True:
            event = await client.read_event()
            assert event is not None, "server hung up"
            got.append(event)
            if event.type == until:
                return got


def audio_of(events) -> bytes:
    types = [e.type for e in events]
    assert types[0] == "audio-start" and types.count("audio-stop") == 1
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    return b"".join(AudioChunk.from_event(e).audio for e in events if AudioChunk.is_type(e.type))


def test_describe_offers_a_streaming_tts_program(wyoming_server):
    port, _, _ = wyoming_server
    [event] = run(exchange(port, [Describe()], "info"))
    [program] = Info.from_event(event).tts
    assert program.name == "voxlet" and program.supports_synthesize_streaming
    assert sorted(v.name for v in program.voices) == ["second", "tiny"]
    assert program.voices[0].languages == ["en"]


def test_one_shot_synthesis(wyoming_server):
    port, _, _ = wyoming_server
    request = Synthesize(text="Hello from Home Assistant.", voice=SynthesizeVoice(name="tiny"))
    events = run(exchange(port, [request], "audio-stop"))
    assert len(audio_of(events)) > 0.3 * 24000 * 2


def test_streamed_synthesis_as_home_assistant_sends_it(wyoming_server):
    port, _, _ = wyoming_server
    text = "The lights are on. The door is locked. Anything else?"
    events = [SynthesizeStart(voice=SynthesizeVoice(name="second"))]
    events += [SynthesizeChunk(text=text[i : i + 5]) for i in range(0, len(text), 5)]
    events += [Synthesize(text=text), SynthesizeStop()]  # the repeat inside is ignored
    got = run(exchange(port, events, "synthesize-stopped"))
    assert SynthesizeStopped.is_type(got[-1].type)
    assert len(audio_of(got[:-1])) > 0.5 * 24000 * 2


def test_an_unknown_voice_is_an_error_event(wyoming_server):
    port, _, _ = wyoming_server
    [event] = run(
        exchange(port, [Synthesize(text="Hi.", voice=SynthesizeVoice(name="../x"))], "error")
    )
    assert "unknown" in Error.from_event(event).text


def test_a_client_that_leaves_frees_its_session(wyoming_server):
    port, server, loop = wyoming_server

    async def leave():
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="tiny")).event())
            await client.write_event(SynthesizeChunk(text="Long text. " * 200).event())
            await client.write_event(SynthesizeStop().event())
            while not AudioChunk.is_type((await client.read_event()).type):
                pass

    run(leave())

    async def active():
        for _ in range(300):
            if server.admission.active == 0:
                return 0
            await asyncio.sleep(0.01)
        return server.admission.active

    assert asyncio.run_coroutine_threadsafe(active(), loop).result(10) == 0
