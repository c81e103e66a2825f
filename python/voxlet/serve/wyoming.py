"""Wyoming (Home Assistant's protocol) on TCP or a Unix socket, beside the HTTP server.

- `describe` -> `info`: one TTS program, "voxlet", with the server's voices and
  `supports_synthesize_streaming`.
- `synthesize {text, voice}`: the whole text.
- `synthesize-start {voice}`, `synthesize-chunk {text}`..., `synthesize-stop`: text still being
  written (an LLM's answer), spoken a sentence at a time as sentences complete; the
  `synthesize` Home Assistant also sends inside a streamed request is ignored.
- Out: `audio-start`, an `audio-chunk` per 80 ms frame (16-bit mono at 24 kHz),
  `audio-stop`; `synthesize-stopped` after a streamed request; `error {text, code}`.

Sessions come from the same admission as HTTP requests; a client that disconnects stops its
stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from voxlet import __version__
from voxlet.audio import f32_to_bytes
from voxlet.constants import SAMPLE_RATE_HZ
from voxlet.errors import StreamError, TextError, VoiceError
from voxlet.options import GenerationOptions
from voxlet.runtime.word_clock import WordTiming
from voxlet.serve import bridge
from voxlet.serve.app import ApiError, Server
from voxlet.serve.websocket import Fragments

log = logging.getLogger("voxlet.serve")
_ATTRIBUTION = Attribution(name="voxlet", url="https://github.com/voxlet")


def info(server: Server) -> Info:
    language = server.tts.language
    voices = [
        TtsVoice(
            name=name,
            attribution=_ATTRIBUTION,
            installed=True,
            description=name,
            version=None,
            languages=[language],
        )
        for name in server.voices.names
    ]
    program = TtsProgram(
        name="voxlet",
        attribution=_ATTRIBUTION,
        installed=True,
        description=f"voxlet {server.model_name}",
        version=__version__,
        voices=voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


class WyomingHandler(AsyncEventHandler):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server):
        super().__init__(reader, writer)
        self.server = server
        self._fragments: Fragments | None = None  # a streamed request taking text
        self._task: asyncio.Task[None] | None = None

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(info(self.server).event())
        elif Synthesize.is_type(event.type):
            if self._fragments is None:  # inside a streamed request it repeats the text
                request = Synthesize.from_event(event)
                await self._finish_previous()
                await self._speak(request.text, request.voice)
        elif SynthesizeStart.is_type(event.type):
            if self._fragments is not None:  # a new request before the last one's stop
                await self._cancel()
            await self._finish_previous()
            self._fragments = Fragments()
            voice = SynthesizeStart.from_event(event).voice
            self._task = asyncio.create_task(self._speak(self._fragments, voice, streamed=True))
        elif SynthesizeChunk.is_type(event.type):
            if self._fragments is not None:
                self._fragments.put(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(event.type):
            # the text is complete; the audio goes on in its task while events are still
            # read, so a client that leaves now is seen at once (and its stream stopped)
            if self._fragments is not None:
                self._fragments.close()
                self._fragments = None
        return True

    async def _finish_previous(self) -> None:
        """Lets a streamed request whose text is complete finish its audio first."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _speak(
        self, text: str | Iterable[str], voice: SynthesizeVoice | None, streamed: bool = False
    ) -> None:
        name = voice.name if voice is not None and voice.name else self.server.voices.default
        try:
            try:
                if name is None:
                    raise VoiceError("this server has no voice")
                ticket, stream = await self.server.start(text, name, GenerationOptions(), False)
            except (ApiError, VoiceError, TextError) as e:
                message = e.message if isinstance(e, ApiError) else str(e)
                await self.write_event(Error(text=message, code=type(e).__name__).event())
                return
            fmt = {"rate": SAMPLE_RATE_HZ, "width": 2, "channels": 1}
            started = False
            try:
                async for item in bridge.read(stream, self.server.limiter):
                    if isinstance(item, WordTiming):
                        continue
                    if not started:
                        await self.write_event(AudioStart(**fmt).event())
                        started = True
                    pcm = f32_to_bytes(np.ascontiguousarray(item, np.float32), "s16")
                    await self.write_event(AudioChunk(audio=pcm, **fmt).event())
            except StreamError as e:
                cause = e.__cause__ if isinstance(e.__cause__, TextError) else e
                await self.write_event(Error(text=str(cause), code="StreamError").event())
            finally:
                ticket.release()
            if started:
                await self.write_event(AudioStop().event())
        finally:
            if isinstance(text, Fragments):
                text.close()
            if streamed:
                await self.write_event(SynthesizeStopped().event())

    async def _cancel(self) -> None:
        if self._fragments is not None:
            self._fragments.close()
            self._fragments = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def disconnect(self) -> None:
        await self._cancel()


async def start(uri: str, server: Server) -> AsyncServer:
    """Starts serving `uri` (tcp://HOST:PORT or unix://PATH) without blocking; `stop()` it."""
    if not uri.startswith(("tcp://", "unix://")):
        raise ValueError(f"--wyoming {uri}: must be tcp://HOST:PORT or unix://PATH")
    wyoming = AsyncServer.from_uri(uri)
    await wyoming.start(lambda r, w: WyomingHandler(r, w, server))
    return wyoming
