"""Speed with pitch kept: the Rust time stretch through its one-shot call, the PCM pipeline and
a whole stream. Duration scales by 1/speed within 1 %, a voiced signal keeps its pitch within
2 %, streamed equals one-shot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import fixture_path
from voxlet import ConfigError, GenerationOptions
from voxlet.audio import AudioError, PcmPipeline, time_stretch
from voxlet.runtime import StreamOptions

RATE = 24_000
VOICE = str(fixture_path("tiny_voice.safetensors"))


def voiced(seconds: float, f0: float) -> np.ndarray:
    """A buzz with five harmonics and a slow vibrato-free envelope: a vowel, roughly."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    return (0.3 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def pitch_hz(x: np.ndarray) -> float:
    """Fundamental by autocorrelation, 60-400 Hz, refined by a parabola."""
    x = x - x.mean()
    corr = np.correlate(x, x, "full")[len(x) - 1 :]
    lo, hi = RATE // 400, RATE // 60
    k = lo + int(np.argmax(corr[lo:hi]))
    a, b, c = corr[k - 1], corr[k], corr[k + 1]
    return RATE / (k + 0.5 * (a - c) / (a - 2 * b + c))


@pytest.mark.parametrize("speed", [0.25, 0.5, 0.75, 1.5, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_duration_scales_and_pitch_is_kept(speed, f0):
    x = voiced(2.0, f0)
    y = time_stretch(x, speed)
    assert abs(len(y) - len(x) / speed) <= 0.01 * len(x) / speed
    middle = y[len(y) // 3 : len(y) // 3 + 4800]
    assert abs(pitch_hz(middle) - f0) <= 0.02 * f0
    assert np.abs(y).max() <= 1.05 * np.abs(x).max()  # overlap-add does not blow up


def test_speed_one_is_the_input_untouched():
    x = voiced(0.5, 150.0)
    assert np.array_equal(time_stretch(x, 1.0), x)


@given(cuts=st.lists(st.integers(0, 40_000), max_size=12), speed=st.floats(0.25, 4.0))
def test_pipeline_streamed_equals_one_shot(cuts, speed):
    x = voiced(40_000 / RATE, 180.0)
    pipeline = PcmPipeline(RATE, RATE, 1 << 18, speed=speed)
    bounds = [0, *sorted(cuts), len(x)]
    for a, b in itertools.pairwise(bounds):
        pipeline.push(x[a:b])
    pipeline.finish()
    out = np.empty(pipeline.available_frames, np.float32)
    pipeline.pop_into(out)
    assert np.array_equal(out, time_stretch(x, speed))


@pytest.mark.parametrize("speed", [0.0, 0.2, 4.5, float("nan"), float("inf")])
def test_out_of_range_speeds_are_refused(speed):
    with pytest.raises(AudioError, match="speed"):
        time_stretch(np.zeros(10, np.float32), speed)
    with pytest.raises(ConfigError, match="speed"):
        GenerationOptions(speed=speed)


def test_nan_is_refused_before_stretching():
    x = np.zeros(5000, np.float32)
    x[1234] = np.nan
    with pytest.raises(AudioError, match="sample 1234"):
        time_stretch(x, 1.5)


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_a_stream_at_speed_is_the_stretched_stream(tiny_tts, speed):
    opts = GenerationOptions(temperature=0.0, max_frames=10, on_no_eos="ignore", seed=2)
    normal = tiny_tts.synthesize("Hello there, world.", VOICE, opts)
    fast = tiny_tts.synthesize("Hello there, world.", VOICE, opts.replace(speed=speed))
    assert np.array_equal(fast, time_stretch(normal, speed))
    assert len(fast) == round(len(normal) / speed)
    frames = list(tiny_tts.stream("Hello there, world.", VOICE, opts.replace(speed=speed)))
    assert all(len(f) == 1920 for f in frames[:-1])  # still 80 ms frames


def test_speed_with_resampling(tiny_tts):
    opts = GenerationOptions(temperature=0.0, max_frames=10, on_no_eos="ignore", seed=2)
    options = StreamOptions(output_rate_hz=48_000)
    normal = tiny_tts.synthesize("Hello.", VOICE, opts, options)
    slow = tiny_tts.synthesize("Hello.", VOICE, opts.replace(speed=0.5), options)
    assert abs(len(slow) - 2 * len(normal)) <= 2
