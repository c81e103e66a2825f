"""The int8 kernels behind precision="int8", as Python sees them (voxlet._native.Int8Matrix) and
as the model uses them (Int8Linear)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import snr_db
from voxlet._native import F32Matrix, Int8Matrix, KernelError, kernel_isa
from voxlet.model.quantize import Int8Linear


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_apply_is_close_to_the_float_product_for_any_leading_shape(rng):
    w = rng.standard_normal((70, 100), dtype=np.float32)
    b = rng.standard_normal(70, dtype=np.float32)
    m = Int8Matrix(w, b)
    assert (m.rows, m.cols) == (70, 100)
    for shape in [(100,), (1, 100), (5, 100), (2, 3, 100), (0, 100)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        y = m.apply(x)
        assert y.shape == (*shape[:-1], 70) and y.dtype == np.float32
        if x.size:
            assert snr_db(x @ w.T + b, y) > 30


def test_a_single_row_is_quantized_finer_than_several(rng):
    w = rng.standard_normal((64, 512), dtype=np.float32)
    m = Int8Matrix(w)
    x = rng.standard_normal((2, 512), dtype=np.float32)
    alone, in_pair = m.apply(x[:1])[0], m.apply(x)[0]
    reference = x[0] @ w.T
    assert snr_db(reference, alone) > snr_db(reference, in_pair) + 2


def test_apply_rows_gives_each_row_its_bits_alone(rng):
    """Several sessions' rows in one product: each row comes out as a product of that row
    alone would make it (where `apply` quantizes several rows coarser), on any thread count;
    a float matrix's rows are independent either way."""
    w = rng.standard_normal((1030, 2048), dtype=np.float32)  # big enough to be split
    b = rng.standard_normal(1030, dtype=np.float32)
    x = rng.standard_normal((11, 2048), dtype=np.float32)  # the 8-, 2- and 1-row passes
    m = Int8Matrix(w, b)
    alone = np.concatenate([m.apply(x[i : i + 1]) for i in range(len(x))])
    for threads in (1, 2):
        np.testing.assert_array_equal(m.apply_rows(x, threads), alone)
    assert not np.array_equal(m.apply(x), alone)
    f = F32Matrix(np.ascontiguousarray(w[:70, :100]), b[:70].copy())
    y = rng.standard_normal((5, 100), dtype=np.float32)
    np.testing.assert_array_equal(f.apply_rows(y), f.apply(y))
    np.testing.assert_array_equal(f.apply_rows(y)[2:3], f.apply(y[2:3]))


def test_thread_count_does_not_change_the_bits(rng):
    w = rng.standard_normal((1030, 2048), dtype=np.float32)  # big enough to be split
    m = Int8Matrix(w)
    for rows in (1, 14):
        x = rng.standard_normal((rows, 2048), dtype=np.float32)
        one = m.apply(x, threads=1)
        np.testing.assert_array_equal(m.apply(x, threads=2), one)
        np.testing.assert_array_equal(m.apply(x, threads=8), one)


def test_dequantize_and_size(rng):
    w = rng.standard_normal((6, 40), dtype=np.float32)
    m = Int8Matrix(w)
    back = m.dequantize()
    step = np.abs(w).max(axis=1, keepdims=True) / 127
    assert back.shape == w.shape and np.all(np.abs(back - w) <= step / 2 + 1e-7)
    assert m.nbytes == 8 * 64 + 4 * 6 + 4 * 8  # rows padded to groups of 4, columns to 32


def test_bad_input_raises_kernel_error_naming_the_problem(rng):
    assert issubclass(KernelError, ValueError)
    w = rng.standard_normal((4, 8), dtype=np.float32)
    m = Int8Matrix(w)
    with pytest.raises(KernelError, match=r"does not end in 8 columns"):
        m.apply(np.zeros((2, 7), np.float32))
    with pytest.raises(KernelError, match="C-contiguous"):
        m.apply(np.zeros((8, 2), np.float32).T)
    with pytest.raises(KernelError, match="bias: expected 4 elements, got 3"):
        Int8Matrix(w, np.zeros(3, np.float32))
    bad = w.copy()
    bad[1, 2] = np.inf
    with pytest.raises(KernelError, match="weight value"):
        Int8Matrix(bad)
    with pytest.raises(TypeError):
        m.apply(np.zeros((2, 8), np.float64))
    assert kernel_isa() in ("avx2", "portable")


def test_int8_linear_matches_a_linear_with_the_dequantized_weights():
    g = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(96, 48)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, 96, generator=g))
    q = Int8Linear(linear.weight, linear.bias)
    x = torch.randn(3, 5, 96, generator=g)
    with torch.no_grad():
        want = linear(x)
        got = q(x)
        assert got.shape == (3, 5, 48) and got.dtype == torch.float32
        assert snr_db(want.numpy(), got.numpy()) > 30
        # a transposed, double-precision or grad-tracking input is converted, not refused
        xt = x.transpose(0, 1).double()
        torch.testing.assert_close(q(xt), q(xt.float().contiguous()), rtol=0, atol=0)
    xg = x.clone().requires_grad_(True)
    torch.testing.assert_close(q(xg), got, rtol=0, atol=0)
    assert q.nbytes < 4 * 48 * 96 / 3  # int8 values, not float


def test_column_major_weights_are_refused_not_misread(rng):
    w = np.asfortranarray(rng.standard_normal((4, 8), dtype=np.float32))
    with pytest.raises(KernelError, match="weight must be C-contiguous"):
        Int8Matrix(w)


def _stream(module, state, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    out, start = [], 0
    for n in sizes:
        out.append(module(x[..., start : start + n], state))
        start += n
    return torch.cat(out, dim=-1)


def test_int8_convolutions_stay_close_to_float_and_stream():
    from voxlet.model.layers.conv import StreamingConv1d, StreamingConvTranspose1d
    from voxlet.model.quantize import quantize_convs

    torch.manual_seed(0)
    model = torch.nn.ModuleList(
        [
            StreamingConv1d(512, 128, 7),  # 3584 terms per output, too wide for taps: int8
            StreamingConvTranspose1d(512, 32, 12, 6),  # 512 terms: int8
            StreamingConvTranspose1d(128, 32, 8, 4),  # 128 terms: stays float
            StreamingConv1d(64, 32, 3),  # small: the per-tap path, stays float
        ]
    )
    x = torch.randn(1, 512, 24)
    x_small = torch.randn(1, 128, 24)
    x_taps = torch.randn(1, 64, 24)
    with torch.no_grad():
        want = [
            _stream(model[0], model[0].init_state(), x, [24]),
            _stream(model[1], model[1].init_state(), x, [24]),
        ]
        assert quantize_convs(model) == 2
        assert model[2].int8 is None and model[3].int8 is None
        assert model[0].conv.weight.is_meta and model[1].convtr.weight.is_meta  # released
        assert not model[2].convtr.weight.is_meta
        for m, reference in zip(model[:2], want, strict=True):
            one_shot = _stream(m, m.init_state(), x, [24])
            assert one_shot.shape == reference.shape
            assert snr_db(reference.numpy(), one_shot.numpy()) > 25
            # rows are quantized one by one, so chunks of several rows give the same products
            # (the transposed conv's carried overlap is added in another order: float rounding)
            chunked = _stream(m, m.init_state(), x, [8, 6, 10])
            torch.testing.assert_close(chunked, one_shot, rtol=0, atol=1e-6)
        assert model[2](x_small).shape == (1, 32, 24 * 4)  # the overlap is carried
        assert model[3](x_taps).shape == (1, 32, 24)
