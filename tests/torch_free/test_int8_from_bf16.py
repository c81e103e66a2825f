"""int8 weights quantized straight from a checkpoint's bfloat16 bits, on several threads."""

from __future__ import annotations

import numpy as np
import pytest

from voxlet._native import Int8Matrix, KernelError


def bf16_bits(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return (rng.standard_normal(shape, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def test_bf16_bits_quantize_as_their_float32_values_on_any_thread_count():
    rng = np.random.default_rng(0)
    bits = bf16_bits(rng, (1030, 600))  # over the size one thread quantizes alone
    values = (bits.astype(np.uint32) << 16).view(np.float32)
    bias = rng.standard_normal(1030, dtype=np.float32)
    want = Int8Matrix(values, bias)
    x = rng.standard_normal((3, 600), dtype=np.float32)
    for threads in (1, 2, 5):
        got = Int8Matrix(bits, bias, threads)
        np.testing.assert_array_equal(got.dequantize(), want.dequantize())
        np.testing.assert_array_equal(got.apply(x), want.apply(x))


def test_a_non_finite_bf16_weight_or_another_dtype_is_refused():
    bits = np.full((8, 40), 0x3F80, np.uint16)  # 1.0
    bits[5, 7] = 0x7F80  # +inf
    with pytest.raises(KernelError, match="weight value"):
        Int8Matrix(bits, None, 2)
    with pytest.raises(TypeError, match="float32 array, or a uint16 one"):
        Int8Matrix(np.zeros((8, 40), np.float64))
