"""Every stateful layer, and the whole Mimi decoder: streamed in pieces == one call, and causal."""

from __future__ import annotations

import pytest
import torch

from voxlet.model.layers.attention import SelfAttention
from voxlet.model.layers.conv import StreamingConv1d, StreamingConvTranspose1d
from voxlet.model.layers.transformer import Transformer

torch.manual_seed(0)


def _randomize(module: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return module.eval()


def _chunked(fn, x: torch.Tensor, sizes: list[int], dim: int, out_dim: int | None = None):
    """Feeds x to fn in pieces of `sizes` along dim; joins the outputs along out_dim."""
    outs, start = [], 0
    for size in sizes:
        outs.append(fn(x.narrow(dim, start, size)))
        start += size
    assert start == x.shape[dim]
    return torch.cat(outs, dim if out_dim is None else out_dim)


CONVS = [
    pytest.param(dict(kernel_size=7), id="k7"),
    pytest.param(dict(kernel_size=3, dilation=2), id="k3-dilated"),
    pytest.param(dict(kernel_size=8, stride=4), id="k8-s4"),
    pytest.param(dict(kernel_size=32, stride=16, pad_mode="replicate", bias=False), id="replicate"),
    pytest.param(dict(kernel_size=1), id="k1"),
]


@pytest.mark.parametrize("kwargs", CONVS)
def test_conv1d_streamed_equals_one_shot(kwargs):
    conv = _randomize(StreamingConv1d(4, 5, **kwargs))
    stride = kwargs.get("stride", 1)
    x = torch.randn(2, 4, 12 * stride)
    with torch.no_grad():
        full = conv(x)
        state = conv.init_state()
        parts = _chunked(lambda c: conv(c, state), x, [stride, 5 * stride, 6 * stride], -1)
    assert full.shape[-1] == 12
    torch.testing.assert_close(parts, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", CONVS[:2])
def test_single_item_conv_by_taps_streamed_in_pieces_shorter_than_its_context(kwargs):
    """Batch 1 multiplies the carried steps and the new ones apart (no concatenation)."""
    conv = _randomize(StreamingConv1d(4, 5, **kwargs))
    x = torch.randn(1, 4, 12)
    with torch.no_grad():
        want = torch.nn.functional.conv1d(
            torch.nn.functional.pad(x, (conv.context, 0)),
            conv.conv.weight,
            conv.conv.bias,
            dilation=conv.conv.dilation,
        )
        state = conv.init_state()
        parts = _chunked(lambda c: conv(c, state), x, [1, 2, 3, 6], -1)
    torch.testing.assert_close(parts, want, atol=1e-5, rtol=1e-5)


def test_pointwise_plus_skip_equals_the_sum():
    conv = _randomize(StreamingConv1d(4, 5, kernel_size=1))
    for batch in (1, 3):
        x, skip = torch.randn(batch, 4, 9), torch.randn(batch, 5, 9)
        with torch.no_grad():
            torch.testing.assert_close(conv.plus(x, skip), skip + conv(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kwargs", CONVS[:2])
def test_single_item_conv_by_taps_equals_torch_conv(kwargs):
    """Batch 1 takes the per-tap matrix-product path; it must follow weight changes."""
    conv = _randomize(StreamingConv1d(4, 5, **kwargs))
    x = torch.randn(1, 4, 12)

    def torch_conv() -> torch.Tensor:
        return torch.nn.functional.conv1d(
            torch.nn.functional.pad(x, (conv.context, 0)),
            conv.conv.weight,
            conv.conv.bias,
            dilation=conv.conv.dilation,
        )

    with torch.no_grad():
        torch.testing.assert_close(conv(x), torch_conv(), atol=1e-5, rtol=1e-5)
        conv.conv.weight.mul_(-2.0)  # in place
        torch.testing.assert_close(conv(x), torch_conv(), atol=1e-5, rtol=1e-5)
        conv.conv.weight = torch.nn.Parameter(torch.randn_like(conv.conv.weight))  # replaced
        torch.testing.assert_close(conv(x), torch_conv(), atol=1e-5, rtol=1e-5)
    with torch.inference_mode():  # weights made in inference mode keep no version counter
        conv.conv.weight = torch.nn.Parameter(torch.randn_like(conv.conv.weight), False)
        torch.testing.assert_close(conv(x), torch_conv(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", CONVS)
def test_conv1d_is_causal(kwargs):
    conv = _randomize(StreamingConv1d(4, 5, **kwargs))
    stride = kwargs.get("stride", 1)
    x = torch.randn(1, 4, 10 * stride)
    y = x.clone()
    y[..., 6 * stride :] += 1.0
    with torch.no_grad():
        a, b = conv(x), conv(y)
    torch.testing.assert_close(a[..., :6], b[..., :6])
    assert not torch.allclose(a[..., 6:], b[..., 6:])


@pytest.mark.parametrize("groups,bias", [(1, True), (4, False)], ids=["dense", "depthwise"])
def test_conv_transpose_streamed_equals_one_shot(groups, bias):
    convtr = _randomize(StreamingConvTranspose1d(4, 4, 12, 6, groups=groups, bias=bias))
    x = torch.randn(2, 4, 9)
    with torch.no_grad():
        full = convtr(x)
        state = convtr.init_state()
        parts = _chunked(lambda c: convtr(c, state), x, [1, 3, 5], -1)
    assert full.shape[-1] == 9 * 6
    torch.testing.assert_close(parts, full, atol=1e-5, rtol=1e-5)


def test_conv_transpose_is_causal():
    convtr = _randomize(StreamingConvTranspose1d(3, 2, 8, 4))
    x = torch.randn(1, 3, 6)
    y = x.clone()
    y[..., 4:] -= 2.0
    with torch.no_grad():
        a, b = convtr(x), convtr(y)
    torch.testing.assert_close(a[..., : 4 * 4], b[..., : 4 * 4])


@pytest.mark.parametrize("context", [None, 7], ids=["linear-kv", "ring-kv"])
def test_attention_streamed_equals_one_shot(context):
    layers = _randomize(
        Transformer(16, 2, 2, 32, 10000.0, context=context, layer_scale=context is not None)
    )
    x = torch.randn(1, 23, 16)
    with torch.no_grad():
        full = layers(x, layers.init_state(1, 23))
        state = layers.init_state(1, 23)
        parts = _chunked(lambda c: layers(c, state), x, [1, 4, 1, 9, 8], 1)
    torch.testing.assert_close(parts, full, atol=1e-5, rtol=1e-5)


def test_ring_attention_window_bounds_memory_and_matches_full_mask():
    """A query sees exactly the last `context` positions; the ring never grows."""
    attn = _randomize(SelfAttention(8, 2, 10000.0, context=5))
    x = torch.randn(1, 20, 8)
    with torch.no_grad():
        state = attn.init_state(1, 0)
        streamed = torch.cat([attn(x[:, i : i + 1], state) for i in range(20)], 1)
        assert state.k.shape[2] == 5
        # Reference: a fresh state and the whole sequence at once (masked by the window).
        full = attn(x, attn.init_state(1, 0))
        # Changing a position more than `context` steps back changes nothing.
        y = x.clone()
        y[:, 3] += 5.0
        shifted = attn(y, attn.init_state(1, 0))
    torch.testing.assert_close(streamed, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shifted[:, 8:], full[:, 8:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(shifted[:, 3:8], full[:, 3:8])


def test_mimi_decoder_streamed_equals_one_shot(tiny_tts):
    mimi = tiny_tts.network.mimi
    latents = torch.randn(1, 19, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = mimi.decode(latents, mimi.init_decoder_state())
        state = mimi.init_decoder_state()
        parts = _chunked(lambda c: mimi.decode(c, state), latents, [1, 1, 5, 2, 10], 1, -1)
    assert full.shape == (1, 1, 19 * 1920)
    torch.testing.assert_close(parts, full, atol=2e-5, rtol=2e-5)


def test_mimi_decoder_is_causal(tiny_tts):
    mimi = tiny_tts.network.mimi
    latents = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(4))
    changed = latents.clone()
    changed[:, 5:] += 1.0
    with torch.no_grad():
        a = mimi.decode(latents, mimi.init_decoder_state())
        b = mimi.decode(changed, mimi.init_decoder_state())
    torch.testing.assert_close(a[..., : 5 * 1920], b[..., : 5 * 1920])
    assert not torch.allclose(a[..., 5 * 1920 :], b[..., 5 * 1920 :])


def test_mimi_decoder_state_does_not_grow(tiny_tts):
    """300 frames (4800 transformer steps, far past the 250 context): ring size is fixed."""
    mimi = tiny_tts.network.mimi
    state = mimi.init_decoder_state()
    with torch.no_grad():
        for _ in range(30):
            mimi.decode(torch.randn(1, 10, 32), state)
    sizes = {tuple(c.k.shape) for c in state.transformer}
    assert sizes == {(1, 4, 250, 12)}
    assert state.transformer[0].offset == 300 * 16
