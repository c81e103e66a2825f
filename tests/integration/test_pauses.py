"""Pauses through the runtime: `<break>` is exactly that much silence, wherever it stands,
chunk boundaries and resampling included; a blank line is a paragraph pause."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import fixture_path
from voxlet import GenerationOptions
from voxlet.runtime import StreamOptions
from voxlet.text.markup import PARAGRAPH_PAUSE_S, Pause

VOICE = str(fixture_path("tiny_voice.safetensors"))
FRAMES = 6
OPTS = GenerationOptions(temperature=0.0, max_frames=FRAMES, on_no_eos="ignore", seed=1)


def frames_before_pause(tts, text, opts) -> int:
    n = 0
    for plan in tts.plans(text, opts):
        if isinstance(plan, Pause):
            return n
        n += FRAMES
    raise AssertionError("no pause")


@pytest.mark.parametrize(
    ("template", "seconds", "opts"),
    [
        ('Hello <break time="{}"/> world.', 0.5, OPTS),
        ('Hello there.<break time="{}"/>How are you?', 1.5, OPTS),
        # a break inside a text long enough for several chunks on each side
        (
            "One two three four five six seven eight nine ten eleven twelve "
            '<break time="{}"/> thirteen fourteen fifteen sixteen seventeen eighteen.',
            0.25,
            OPTS.replace(max_tokens_per_chunk=8),
        ),
    ],
)
def test_a_break_is_exactly_that_much_silence(tiny_tts, template, seconds, opts):
    without = tiny_tts.synthesize(template.format("0ms"), VOICE, opts)
    text = template.format(f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s")
    with_pause = tiny_tts.synthesize(text, VOICE, opts)
    gap = round(seconds * 24_000)
    at = frames_before_pause(tiny_tts, text, opts) * 1920
    assert len(with_pause) == len(without) + gap
    assert np.array_equal(with_pause[:at], without[:at])
    assert not with_pause[at : at + gap].any()
    assert np.array_equal(with_pause[at + gap :], without[at:])  # the decoder ran on


def test_a_break_after_resampling_is_that_long_at_the_output_rate(tiny_tts):
    options = StreamOptions(output_rate_hz=48_000)
    a = tiny_tts.synthesize('Hello <break time="0ms"/> world.', VOICE, OPTS, options)
    b = tiny_tts.synthesize('Hello <break time="500ms"/> world.', VOICE, OPTS, options)
    assert len(b) - len(a) == 24_000


def test_a_blank_line_is_a_paragraph_pause(tiny_tts):
    one = tiny_tts.synthesize("Hello.\nWorld.", VOICE, OPTS)
    two = tiny_tts.synthesize("Hello.\n\nWorld.", VOICE, OPTS)
    assert len(tiny_tts.chunks("Hello.\n\nWorld.", OPTS)) == 2
    assert len(two) == 2 * FRAMES * 1920 + round(PARAGRAPH_PAUSE_S * 24_000)
    assert len(one) == FRAMES * 1920  # one chunk: no pause


def test_markup_is_never_read_aloud(tiny_tts):
    assert [c.text for c in tiny_tts.chunks('Hi <break time="1s"/> there.', OPTS)] == [
        "Hi.",
        "There.",
    ]
    from voxlet import TextError

    with pytest.raises(TextError, match="unsupported markup <b>"):
        tiny_tts.synthesize("Hi <b>there</b>.", VOICE, OPTS)
    with pytest.raises(TextError, match="empty"):
        tiny_tts.synthesize('<break time="1s"/>', VOICE, OPTS)
