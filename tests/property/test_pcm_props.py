"""PCM conversion in Rust equals the numpy reference exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from voxlet.audio import f32_to_bytes, f32_to_bytes_into, f32_to_i16, i16_to_f32

FINITE = arrays(
    np.float32,
    st.integers(0, 3000),
    elements=st.floats(-4, 4, width=32, allow_nan=False, allow_infinity=False),
)
ANY_FLOAT = arrays(np.float32, st.integers(0, 300), elements=st.floats(width=32))


def numpy_i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * np.float32(32767)), -32768, 32767).astype(np.int16)


@settings(max_examples=300, deadline=None)
@given(x=FINITE)
def test_f32_to_i16_equals_numpy(x):
    assert np.array_equal(f32_to_i16(x), numpy_i16(x))
    out = np.empty(len(x) + 5, dtype=np.int16)
    assert f32_to_i16(x, out) is out
    assert np.array_equal(out[: len(x)], numpy_i16(x))


@settings(max_examples=200, deadline=None)
@given(x=ANY_FLOAT)
def test_nan_maps_to_zero_and_infinities_clip(x):
    ref = numpy_i16(np.clip(np.nan_to_num(x, nan=0.0, posinf=4.0, neginf=-4.0), -4, 4))
    assert np.array_equal(f32_to_i16(x), ref)


@settings(max_examples=200, deadline=None)
@given(x=FINITE)
def test_monotone_and_round_trip(x):
    s = np.sort(x)
    assert np.all(np.diff(f32_to_i16(s).astype(np.int32)) >= 0)
    inside = np.clip(x, -1, 1)
    back = i16_to_f32(f32_to_i16(inside))
    # Encoding scales by 32767, decoding divides by 32768 (the WAV convention): half a step of
    # rounding plus up to one step of scale mismatch.
    assert np.all(np.abs(back - inside) <= 1.5 / 32768 + 1e-7)


@settings(max_examples=200, deadline=None)
@given(x=FINITE)
def test_byte_forms(x):
    assert f32_to_bytes(x, "s16") == numpy_i16(x).astype("<i2").tobytes()
    assert f32_to_bytes(x, "f32") == x.astype("<f4").tobytes()
    buf = bytearray(2 * len(x))
    assert f32_to_bytes_into(x, np.frombuffer(buf, dtype=np.uint8), "s16") == len(buf)
    assert bytes(buf) == numpy_i16(x).astype("<i2").tobytes()
