"""WebSocket speech: text in as it is written, audio and word timings out as they are made.

Client -> server, JSON text messages:
- `{"type": "setup", "voice": NAME, "speed": 1.0, "normalize": true}`: optional, first.
- `{"type": "text", "text": "..."}`: any number; spoken a sentence at a time as sentences
  complete (voxlet's incremental text API).
- `{"type": "flush"}`: speak what was sent even if its last sentence is open; answered with
  `flushed` after its audio. Text after it starts a new utterance.
- `{"type": "end"}`: no more text; answered with `done` after the last audio, then closed.
- `{"type": "cancel"}`: stop speaking and drop the text not yet spoken; answered `cancelled`.

Server -> client: `{"type": "ready", "sample_rate": 24000, "format": "pcm_s16le",
"frame_samples": 1920, "voice": NAME}` first; audio as binary messages (s16le mono PCM, one
80 ms frame each); `{"type": "word", "word", "start_s", "end_s"}` for each word of the text as
written (seconds of this connection's audio); `flushed`, `done`, `cancelled`; and
`{"type": "error", "message", "code"}` (bad message, unknown voice, busy). A connection silent
for the idle timeout is closed (code 1000, reason "idle").
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from voxlet.audio import f32_to_bytes
from voxlet.constants import SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from voxlet.errors import StreamError, TextError, VoiceError
from voxlet.options import GenerationOptions
from voxlet.runtime.word_clock import WordTiming
from voxlet.serve import bridge
from voxlet.serve.app import ApiError, Server

_MAX_MESSAGE_CHARS = 64 * 1024


class Fragments:
    """Text fragments handed from the event loop to the text feed's reader thread. `close()`
    ends the iteration (and so the utterance); a closed feed never blocks its reader."""

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._closed = threading.Event()

    def put(self, text: str) -> None:
        if not self._closed.is_set():
            self._queue.put(text)

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item


class _Connection:
    def __init__(self, ws: WebSocket, server: Server):
        self.ws = ws
        self.server = server
        self.voice: str | None = server.voices.default
        self.opts = GenerationOptions()
        self.ready = False
        self.sent_samples = 0  # this connection's audio so far: the word timeline
        self.fragments: Fragments | None = None  # the utterance taking text now
        self.chars = 0
        self.tasks: list[asyncio.Task[None]] = []  # utterances, spoken one after another
        self.notes: list[asyncio.Task[None]] = []  # `flushed` / `done` once audio is out
        self.ending = False
        self.send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any] | bytes) -> None:
        async with self.send_lock:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            else:
                await self.ws.send_text(json.dumps(message))

    async def error(self, message: str, code: str) -> None:
        await self.send({"type": "error", "message": message, "code": code})

    async def setup(self, msg: dict[str, Any]) -> None:
        if self.ready:
            raise ApiError(400, "setup: only as the first message", code="bad_message")
        voice = msg.get("voice", self.voice)
        try:
            self.voice = self.server.voices.check(voice)
        except VoiceError as e:
            raise ApiError(400, str(e), code="unknown_voice") from e
        speed, normalize = msg.get("speed", 1.0), msg.get("normalize", True)
        try:
            self.opts = GenerationOptions(speed=speed, normalize=normalize)
        except (TypeError, ValueError) as e:
            raise ApiError(400, f"setup: {e}", code="bad_message") from e
        await self.say_ready()

    async def say_ready(self) -> None:
        if self.voice is None:
            raise ApiError(400, "no voice: send setup with a voice", code="unknown_voice")
        self.ready = True
        await self.send(
            {
                "type": "ready",
                "sample_rate": SAMPLE_RATE_HZ,
                "format": "pcm_s16le",
                "frame_samples": SAMPLES_PER_FRAME,
                "voice": self.voice,
            }
        )

    async def text(self, text: object) -> None:
        if not isinstance(text, str):
            raise ApiError(400, "text: must be a string", code="bad_message")
        if not self.ready:
            await self.say_ready()
        if self.fragments is None:
            self.fragments, self.chars = Fragments(), 0
            previous = self.tasks[-1] if self.tasks else None
            task = asyncio.create_task(self.speak(self.fragments, previous))
            self.tasks.append(task)
        self.chars += len(text)
        if self.chars > self.server.settings.max_input_chars * 16:
            self.fragments.close()
            self.fragments = None
            raise ApiError(400, "text: too much for one utterance; flush", code="too_long")
        self.fragments.put(text)

    def close_text(self) -> asyncio.Task[None] | None:
        """Ends the utterance taking text; its task (None where there was none)."""
        if self.fragments is None:
            return self.tasks[-1] if self.tasks else None
        self.fragments.close()
        self.fragments = None
        return self.tasks[-1]

    async def speak(self, fragments: Fragments, previous: asyncio.Task[None] | None) -> None:
        """One utterance, after the one before it; its audio and words go out as made."""
        try:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            assert self.voice is not None
            try:
                ticket, stream = await self.server.start(fragments, self.voice, self.opts, True)
            except ApiError as e:
                await self.error(e.message, e.code or "error")
                return
            offset = self.sent_samples / SAMPLE_RATE_HZ
            clock = self.server.metrics.session()
            try:
                async for item in bridge.read(stream, self.server.limiter):
                    if isinstance(item, WordTiming):
                        word = {"word": item.word, "start_s": offset + item.start_s}
                        word["end_s"] = offset + item.end_s
                        await self.send({"type": "word", **word})
                        continue
                    clock.audio(len(item) / SAMPLE_RATE_HZ)
                    self.sent_samples += len(item)
                    await self.send(f32_to_bytes(np.ascontiguousarray(item, np.float32), "s16"))
            except StreamError as e:
                cause = e.__cause__
                code = "bad_text" if isinstance(cause, TextError) else "failed"
                await self.error(str(cause) if isinstance(cause, TextError) else str(e), code)
            finally:
                clock.close()
                ticket.release()
        finally:
            fragments.close()  # the text feed's reader never waits on a finished utterance

    async def cancel(self) -> None:
        self.close_text()
        tasks, self.tasks = self.tasks + self.notes, []
        self.notes = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def after_audio(self, reply: str, close: bool = False) -> None:
        """Sends `reply` once the audio of everything so far is out (and closes, if asked),
        while further messages (a cancel) are still read."""
        task = self.close_text()
        pending = [task] if task is not None else []

        async def note() -> None:
            await asyncio.gather(*pending, return_exceptions=True)
            await self.send({"type": reply})
            if close:
                await self.ws.close(code=1000)

        self.notes.append(asyncio.create_task(note()))

    async def handle(self, raw: str) -> None:
        """One client message."""
        if len(raw) > _MAX_MESSAGE_CHARS:
            raise ApiError(
                400, f"message: more than {_MAX_MESSAGE_CHARS} characters", code="too_long"
            )
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ApiError(400, f"message: not JSON ({e})", code="bad_message") from e
        kind = msg.get("type") if isinstance(msg, dict) else None
        if self.ending and kind != "cancel":
            raise ApiError(400, f"message type {kind!r}: after end", code="bad_message")
        if kind == "setup":
            await self.setup(msg)
        elif kind == "text":
            await self.text(msg.get("text"))
        elif kind == "flush":
            self.after_audio("flushed")
        elif kind == "end":
            self.ending = True
            self.after_audio("done", close=True)
        elif kind == "cancel":
            await self.cancel()
            await self.send({"type": "cancelled"})
            if self.ending:
                await self.ws.close(code=1000)
        else:
            raise ApiError(
                400,
                f"message type {kind!r}: must be setup, text, flush, end or cancel",
                code="bad_message",
            )


async def websocket_speech(ws: WebSocket, server: Server) -> None:
    try:
        server.authorize(ws)
    except ApiError as e:  # refused before the handshake: an HTTP 401 with the error
        server.metrics.request("websocket", e.status)
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(e.response())
        else:
            await ws.close(code=1008, reason=e.message[:120])
        return
    await ws.accept()
    server.metrics.request("websocket", 101)
    conn = _Connection(ws, server)
    idle = server.settings.idle_timeout_s
    try:
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), idle)
            except TimeoutError:
                await ws.close(code=1000, reason="idle")
                return
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                await conn.error("binary messages are not accepted; send JSON text", "bad_message")
                continue
            try:
                await conn.handle(raw)
            except ApiError as e:
                await conn.error(e.message, e.code or "error")
    except WebSocketDisconnect:
        return
    finally:
        await conn.cancel()
