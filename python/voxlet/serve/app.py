"""The ASGI application behind `voxlet serve` (Starlette): OpenAI-compatible speech, the model
and voice lists, health, metrics, and the WebSocket (`voxlet.serve.websocket`).

Every request that speaks holds a session from `Admission` for as long as its audio streams;
its FlowLM frames are made on the server's one `Engine` thread, batched with the others';
the session's `Stream` is stopped, and the session released, however the response ends (done,
failed, or the client gone: within a frame of the next audio send).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from voxlet.constants import SAMPLE_RATE_HZ
from voxlet.errors import StreamError, TextError, VoiceError, VoxletError
from voxlet.options import MAX_SPEED, MIN_SPEED, GenerationOptions
from voxlet.runtime.stream import Stream
from voxlet.runtime.word_clock import WordTiming
from voxlet.serve import bridge
from voxlet.serve.admission import Admission, Busy, Ticket
from voxlet.serve.encoding import CONTENT_TYPES, Encoder, UnsupportedFormat
from voxlet.serve.metrics import Metrics, SessionClock
from voxlet.serve.settings import ServeSettings
from voxlet.serve.voices import VoiceCatalog
from voxlet.tts import TTS

log = logging.getLogger("voxlet.serve")
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ApiError(Exception):
    """An OpenAI-style error response: status, message, type, param, code."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status,
            message,
            param,
            code,
            kind,
        )

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def busy(e: Busy) -> ApiError:
    return ApiError(429, str(e), code="server_busy", kind="server_error")


class Server:
    """What the routes share: the model, its voices, admission, metrics, warm-up state."""

    def __init__(self, tts: TTS, settings: ServeSettings | None = None):
        self.tts = tts
        self.settings = settings or ServeSettings()
        self.voices = VoiceCatalog(tts, self.settings.voices_dir)
        s = self.settings
        self.admission = Admission(s.max_sessions, s.max_waiting, s.queue_wait_s)
        self.metrics = Metrics(self.admission)
        # one worker thread per session read, plus voice loading and stream starts
        self.limiter = anyio.CapacityLimiter(2 * s.max_sessions + 2)
        self.ready = False
        self.model_name = tts.config.name
        # every session's FlowLM frames on one thread, stepped together; decoders per session
        self.engine = tts.engine()

    def authorize(self, conn: HTTPConnection) -> None:
        key = self.settings.api_key
        if key is None:
            return
        given = conn.headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if conn.scope["type"] == "websocket" and not token:
            token = conn.query_params.get("api_key", "")  # browsers cannot set headers
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise ApiError(
                401,
                "invalid or missing API key (Authorization: Bearer ...)",
                code="invalid_api_key",
            )

    def warm_up(self) -> None:
        """A short utterance through the whole path, so the first client is not the slow one:
        in the default voice, or the first that loads (a predefined voice may need a download
        that fails offline: logged, and the next is tried)."""
        names = self.voices.names
        default = self.voices.default
        for name in [default, *(n for n in names if n != default)] if default else names:
            try:
                voice = self.voices.get(name)
            except VoxletError as e:
                log.warning("warm-up: voice %s: %s", name, e)
                continue
            self.tts.synthesize("Ready.", voice, GenerationOptions(seed=0))
            break
        self.ready = True

    async def start(
        self,
        text: str | Iterable[str],
        voice_name: str,
        opts: GenerationOptions,
        word_timings: bool,
    ) -> tuple[Ticket, Stream]:
        """A session: its ticket and its running stream (ApiError on bad text or voice, or
        when busy)."""
        self.voices.check(voice_name)
        try:
            ticket = await self.admission.acquire()
        except Busy as e:
            raise busy(e) from e
        opened: list[Stream] = []

        def open_stream() -> Stream:
            voice = self.voices.get(voice_name)
            stream = self.tts.open_stream(
                text, voice, opts, word_timings=word_timings, engine=self.engine
            )
            opened.append(stream)
            return stream

        try:
            stream = await anyio.to_thread.run_sync(open_stream, limiter=self.limiter)
        except BaseException:  # bad text or voice, or the client gone while it opened
            for started in opened:  # cancelled after the stream started: nobody will read it
                await bridge.stop(started, self.limiter)
            ticket.release()
            raise
        return ticket, stream


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    voice: str
    response_format: str
    speed: float
    stream_format: str
    normalize: bool


def parse_speech(body: Mapping[str, Any], server: Server) -> SpeechRequest:
    """The fields of an OpenAI speech request, checked; unknown fields are ignored."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "model: must be a string", "model")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "input: must be a non-empty string", "input")
    limit = server.settings.max_input_chars
    if len(text) > limit:
        raise ApiError(400, f"input: {len(text)} characters, more than {limit}", "input")
    voice = body.get("voice", server.voices.default)
    if not isinstance(voice, str):
        raise ApiError(400, "voice: must be a string (GET /v1/voices lists them)", "voice")
    fmt = body.get("response_format", "mp3")
    if fmt not in CONTENT_TYPES:
        raise ApiError(
            400, f"response_format: must be one of {', '.join(CONTENT_TYPES)}", "response_format"
        )
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise ApiError(400, "speed: must be a number", "speed")
    if not MIN_SPEED <= float(speed) <= MAX_SPEED:
        raise ApiError(400, f"speed: must be {MIN_SPEED}..{MAX_SPEED}, got {speed}", "speed")
    stream_format = body.get("stream_format", "audio")
    if stream_format not in ("audio", "sse"):
        raise ApiError(400, "stream_format: must be 'audio' or 'sse'", "stream_format")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise ApiError(400, "normalize: must be true or false", "normalize")
    return SpeechRequest(text, voice, fmt, float(speed), stream_format, normalize)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body: {declared} bytes, more than {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body: more than {limit} bytes")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"request body: not JSON ({e})") from e
    if not isinstance(data, dict):
        raise ApiError(400, "request body: must be a JSON object")
    return data


class SessionResponse(StreamingResponse):
    """A streaming response that ends its session however it ends."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], Any], **kw: Any):
        super().__init__(content, **kw)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()


def _frames_seconds(pcm: Any) -> float:
    return len(pcm) / SAMPLE_RATE_HZ  # the server streams at the model's rate


async def _audio_body(
    stream: Stream, encoder: Encoder, clock: SessionClock, server: Server
) -> AsyncIterator[bytes]:
    head = encoder.start()
    if head:
        yield head
    try:
        async for item in bridge.read(stream, server.limiter):
            if isinstance(item, WordTiming):
                continue
            data = encoder.frame(item)
            clock.audio(_frames_seconds(item))
            if data:
                yield data
    except StreamError as e:  # the status is sent: end the body short, say why in the log
        log.error("speech failed mid-stream: %s", e)
        return
    tail = encoder.finish()
    if tail:
        yield tail


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


async def _sse_body(
    stream: Stream, encoder: Encoder, clock: SessionClock, server: Server, tokens: int
) -> AsyncIterator[bytes]:
    def delta(data: bytes) -> bytes:
        return _sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})

    pending = encoder.start()
    try:
        async for item in bridge.read(stream, server.limiter):
            if isinstance(item, WordTiming):
                continue
            clock.audio(_frames_seconds(item))
            data = pending + encoder.frame(item)
            pending = b""
            if data:
                yield delta(data)
    except StreamError as e:
        yield _sse({"type": "error", "error": ApiError(500, str(e), kind="server_error").body()})
        return
    tail = pending + encoder.finish()
    if tail:
        yield delta(tail)
    usage = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
    yield _sse({"type": "speech.audio.done", "usage": usage})


def create_app(tts: TTS, settings: ServeSettings | None = None, warm: bool = True) -> Starlette:
    """The application; with `warm`, a warm-up utterance runs at start-up (`/health` answers
    503 until it is done)."""
    from voxlet.serve.websocket import websocket_speech

    server = Server(tts, settings)

    def route(name: str, fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            try:
                if name != "health":
                    server.authorize(request)
                response = await fn(request)
            except ApiError as e:
                response = e.response()
            server.metrics.request(name, response.status_code)
            return response

        return handler

    async def speech(request: Request) -> Response:
        req = parse_speech(await read_json(request, server.settings.max_body_bytes), server)
        try:
            encoder = Encoder(req.response_format)
        except UnsupportedFormat as e:
            raise ApiError(400, str(e), "response_format", "unsupported_format") from e
        opts = GenerationOptions(speed=req.speed, normalize=req.normalize)
        try:
            ticket, stream = await server.start(req.text, req.voice, opts, word_timings=False)
        except TextError as e:
            raise ApiError(400, f"input: {e}", "input") from e
        except VoiceError as e:
            raise ApiError(400, str(e), "voice", "unknown_voice") from e
        clock = server.metrics.session()

        async def close() -> None:
            await bridge.stop(stream, server.limiter)
            clock.close()
            ticket.release()

        if req.stream_format == "sse":
            tokens = len(server.tts.tokenizer.encode(req.text))
            body = _sse_body(stream, encoder, clock, server, tokens)
            media = "text/event-stream"
        else:
            body = _audio_body(stream, encoder, clock, server)
            media = encoder.content_type
        return SessionResponse(body, close, media_type=media, headers=STREAM_HEADERS)

    async def models(request: Request) -> Response:
        entry = {"id": server.model_name, "object": "model", "created": 0, "owned_by": "voxlet"}
        return JSONResponse({"object": "list", "data": [entry]})

    async def voices(request: Request) -> Response:
        return JSONResponse({"voices": server.voices.names, "default": server.voices.default})

    async def health(request: Request) -> Response:
        if not server.ready:
            return JSONResponse({"status": "warming up"}, status_code=503)
        return JSONResponse({"status": "ok", "model": server.model_name})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(server.metrics.render(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            if not warm:
                server.ready = True
                yield
                return
            async with anyio.create_task_group() as tasks:  # serving (503) while it warms up
                tasks.start_soon(anyio.to_thread.run_sync, server.warm_up)
                yield
                tasks.cancel_scope.cancel()
        finally:
            server.engine.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "server error"
        return ApiError(status, f"{request.method} {request.url.path}: {detail}").response()

    routes = [
        Route("/v1/audio/speech", route("speech", speech), methods=["POST"]),
        Route("/v1/models", route("models", models), methods=["GET"]),
        Route("/v1/voices", route("voices", voices), methods=["GET"]),
        Route("/v1/audio/voices", route("voices", voices), methods=["GET"]),
        Route("/health", route("health", health), methods=["GET"]),
        Route("/metrics", route("metrics", metrics), methods=["GET"]),
        WebSocketRoute("/v1/audio/speech/stream", lambda ws: websocket_speech(ws, server)),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})
    app.state.server = server
    return app
