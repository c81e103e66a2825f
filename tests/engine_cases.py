"""The texts the engine tests speak at once, each with its own seed, and the helper that speaks
them together; torch-free (tests/torch_free imports it too)."""

from __future__ import annotations

import threading

from tests.conftest import fixture_path
from voxlet import GenerationOptions

VOICE = str(fixture_path("tiny_voice.safetensors"))
TEXTS = [
    "Hello there, my friend.",
    'It costs $5 today! <break time="200ms"/> See you at 7:45.',
    "A third one, a bit longer than the others, with commas, and more.",
    "Short.",
]
OPTS = [GenerationOptions(seed=i, max_tokens_per_chunk=8) for i in range(len(TEXTS))]


def all_at_once(tts, **kwargs) -> list:
    """Every text synthesized at the same time, one thread each: the audio of each."""
    got: list = [None] * len(TEXTS)

    def speak(i: int) -> None:
        got[i] = tts.synthesize(TEXTS[i], VOICE, OPTS[i], **kwargs)

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(len(TEXTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return got
