"""The layers' Rust kernels (model/layers/native.py): ELU and tanh GELU give PyTorch's values in
place on any strided layout, PyTorch itself where autograd or another dtype needs it; the
transposed convolution's overlap-add gives the PyTorch path's bits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from voxlet._native import KernelError, elu_
from voxlet.model.layers.native import elu, gelu_tanh_inplace


def _inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40, 77, generator=g) * 4
    x[0, 0, :6] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 90.0, -200.0])
    return x


def test_elu_matches_pytorch_and_respects_inplace():
    x = _inputs()
    want = F.elu(x)
    kept = x.clone()
    got = elu(x)
    assert got.data_ptr() != x.data_ptr() and torch.equal(x, kept)  # input untouched
    torch.testing.assert_close(got, want, atol=2e-7, rtol=2e-7)
    same = elu(x, inplace=True)
    assert same.data_ptr() == x.data_ptr()
    torch.testing.assert_close(x, want, atol=2e-7, rtol=2e-7)


def test_gelu_matches_pytorch_tanh_gelu():
    x = _inputs()
    want = F.gelu(x, approximate="tanh")
    got = gelu_tanh_inplace(x)
    assert got.data_ptr() == x.data_ptr()
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "view",
    [
        lambda t: t[:, :, 5:60],  # rows with gaps (a transposed conv's output without its tail)
        lambda t: t.transpose(1, 2),  # dense, another order (an int8 conv's output)
        lambda t: t[:, ::2, ::3],  # no unit stride at all
    ],
)
def test_strided_views_are_written_exactly_where_they_point(view):
    base = _inputs()
    want = base.clone()
    view(want).copy_(F.elu(view(want)))
    elu(view(base), inplace=True)
    torch.testing.assert_close(base, want, atol=2e-7, rtol=2e-7)  # outside the view untouched


def test_nan_and_infinities():
    x = torch.tensor([float("nan"), float("inf"), float("-inf")])
    y = elu(x)
    assert y[0].isnan() and y[1] == float("inf") and y[2] == -1.0


def test_memory_shared_between_elements_is_refused():
    with pytest.raises(KernelError, match=r"\[4, 3\] whose elements share memory"):
        elu_(torch.zeros(1, 3).expand(4, 3).numpy())


def test_autograd_and_other_dtypes_go_to_pytorch():
    x, twin = _inputs().requires_grad_(), _inputs().requires_grad_()
    elu(x).sum().backward()  # a graph was recorded: PyTorch's own ELU
    F.elu(twin).sum().backward()
    assert x.grad is not None and torch.equal(x.grad, twin.grad)
    d = _inputs().double()
    torch.testing.assert_close(elu(d), F.elu(d))
    torch.testing.assert_close(gelu_tanh_inplace(d.clone()), F.gelu(d, approximate="tanh"))


@pytest.mark.parametrize("groups,bias", [(1, True), (1, False), (6, False)])
def test_transposed_conv_overlap_add_gives_the_pytorch_paths_bits(groups, bias):
    from voxlet.model.layers.conv import StreamingConvTranspose1d

    torch.manual_seed(0)
    conv = StreamingConvTranspose1d(6, 6 if groups > 1 else 4, 8, 4, groups=groups, bias=bias)
    chunks = [torch.randn(2, 6, n) for n in (1, 3, 2, 5)]
    native_state, torch_state = conv.init_state(), conv.init_state()
    with torch.no_grad():
        fast = [conv(x, native_state) for x in chunks]
    # inputs that need gradients take the PyTorch path (its two halves' product, when
    # autograd does not record)
    with torch.no_grad():
        slow = [conv(x.clone().requires_grad_(), torch_state) for x in chunks]
    for a, b in zip(fast, slow, strict=True):
        assert a.shape == b.shape and torch.equal(a, b)
    assert torch.equal(native_state.partial, torch_state.partial)
    # where autograd records (training), PyTorch's own transposed conv: the same to rounding
    trained_state = conv.init_state()
    trained = [conv(x.clone().requires_grad_(), trained_state) for x in chunks]
    for a, b in zip(fast, trained, strict=True):
        assert b.requires_grad
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)
    whole = torch.cat(fast, -1)  # and streaming equals one non-streaming call, to rounding
    reference = torch.nn.functional.conv_transpose1d(
        torch.cat(chunks, -1).detach(), conv.convtr.weight, conv.convtr.bias, 4, groups=groups
    )
    torch.testing.assert_close(whole, reference[..., : whole.shape[-1]], atol=1e-5, rtol=1e-5)


def test_overlap_add_refuses_taps_of_the_wrong_shape():
    from voxlet._native import overlap_add

    with pytest.raises(KernelError, match=r"z must be \(batch, steps, channels, 2 \* stride\)"):
        overlap_add(torch.zeros(3, 4, 8).numpy())
    with pytest.raises(KernelError, match="must be twice the stride"):
        overlap_add(torch.zeros(1, 3, 4, 7).numpy())
    with pytest.raises(KernelError, match="partial: expected 16 elements, got 8"):
        overlap_add(torch.zeros(1, 3, 4, 8).numpy(), None, torch.zeros(1, 4, 2).numpy())


def test_elu_out_of_place_on_a_strided_view_and_elu_into_refusals():
    from voxlet._native import elu_into

    base = _inputs()
    view = base.transpose(1, 2)  # not contiguous: copied, then in place
    kept = base.clone()
    torch.testing.assert_close(elu(view), F.elu(view), atol=2e-7, rtol=2e-7)
    assert torch.equal(base, kept)
    with pytest.raises(KernelError, match="elu_into: x has 4 elements, out 3"):
        elu_into(torch.zeros(4).numpy(), torch.zeros(3).numpy())
    with pytest.raises(KernelError, match="out must be C-contiguous"):
        elu_into(torch.zeros(2, 3).numpy(), torch.zeros(3, 2).t().numpy())
