"""Streaming resampling equals one-shot resampling for any chunking; length, DC and delay."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxlet.audio import PcmPipeline, StreamResampler, resample

RATES = [8000, 16000, 22050, 44100, 48000]


@settings(max_examples=40, deadline=None)
@given(
    out_rate=st.sampled_from(RATES),
    n=st.integers(1, 6000),
    cuts=st.lists(st.integers(1, 2500), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_streamed_equals_one_shot(out_rate, n, cuts, seed):
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, n).astype(np.float32)
    whole = resample(x, 24000, out_rate)
    assert len(whole) == math.ceil(n * out_rate / 24000)
    r = StreamResampler(24000, out_rate)
    parts, start = [], 0
    for cut in cuts:
        parts.append(r.process(x[start : start + cut]))
        start += cut
    parts.append(r.process(x[start:]))
    parts.append(r.flush())
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("rate", RATES)
def test_dc_and_stereo(rate):
    dc = resample(np.full(24000, 0.3, np.float32), 24000, rate)
    assert np.allclose(dc[len(dc) // 4 : -len(dc) // 4], 0.3, atol=1e-3)
    stereo = np.stack([np.full(4800, 0.1), np.full(4800, -0.2)], 1).astype(np.float32)
    out = resample(stereo, 24000, rate)
    assert out.shape == (math.ceil(4800 * rate / 24000), 2)
    middle = out[len(out) // 4 : -len(out) // 4]
    assert np.allclose(middle[:, 0], 0.1, atol=1e-3) and np.allclose(middle[:, 1], -0.2, atol=1e-3)


def test_pipeline_resamples_into_the_ring():
    frames = [np.full(1920, 0.25, np.float32) for _ in range(5)]
    pipe = PcmPipeline(24000, 48000, capacity_frames=48000)
    for f in frames:
        pipe.push(f)
    pipe.finish()
    out = np.empty(48000, np.float32)
    n = pipe.pop_into(out)
    assert n == 5 * 3840 and pipe.is_finished
    assert np.array_equal(out[:n], resample(np.concatenate(frames), 24000, 48000))


@settings(max_examples=80, deadline=None)
@given(
    in_rate=st.integers(-5, 2**32 - 1),
    out_rate=st.integers(-5, 2**32 - 1),
    channels=st.integers(-1, 100),
    capacity=st.one_of(st.integers(-1, 10_000), st.integers(2**28 + 1, 2**40)),
)
def test_bad_arguments_raise_audio_error_never_crash(in_rate, out_rate, channels, capacity):
    from voxlet.audio import AudioError

    for make in (
        lambda: StreamResampler(in_rate, out_rate, channels),
        lambda: PcmPipeline(in_rate, out_rate, capacity, channels),
    ):
        try:
            make()
        except (AudioError, OverflowError):
            pass
