"""The native stacks and flow head (`voxlet.model.fused`) against PyTorch's layers over the same
matrices, in both precisions; their refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import load_tiny, snr_db
from voxlet import TTS
from voxlet._audio import F32Matrix, Int8Matrix, KernelError

# How close the native path stays to PyTorch's layers, in dB. float32: rounding only (another
# order of additions). int8: float rounding in the norms, attention and GELU can also flip an
# activation's int8 rounding.
CLOSE = {"fp32": 110.0, "int8": 45.0}


@pytest.fixture(params=["fp32", "int8"])
def tts(request, tiny_tts, int8_tts) -> TTS:
    return tiny_tts if request.param == "fp32" else int8_tts


def _steps(flow_lm, state, n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    outs = []
    for _ in range(n):
        latent = torch.randn(1, 32, generator=g)
        outs.append(flow_lm.hidden(latent, state))
    return outs


def test_both_precisions_run_every_stack_natively(tiny_tts, int8_tts):
    for tts, kind in ((tiny_tts, F32Matrix), (int8_tts, Int8Matrix)):
        network = tts.network
        stacks = (network.flow_lm.transformer, network.mimi.decoder_transformer.transformer)
        assert all(s.native_stack is not None for s in stacks)
        assert network.flow_lm.flow_net.native_velocity is not None
        qkv = network.flow_lm.transformer.native_stack._native
        assert qkv.num_layers == len(network.flow_lm.transformer.layers)
        assert isinstance(_first_matrix(tts), kind)


def test_float_stacks_stay_in_pytorch_without_the_fast_float_kernel(monkeypatch):
    from voxlet.model import fused

    monkeypatch.setattr(fused, "kernel_isa", lambda: "portable")
    for precision, native in (("fp32", False), ("int8", True)):
        network = load_tiny(precision=precision).network
        stacks = (network.flow_lm.transformer, network.mimi.decoder_transformer.transformer)
        assert all((s.native_stack is not None) == native for s in stacks), precision
        assert (network.flow_lm.flow_net.native_velocity is not None) == native, precision


def _first_matrix(tts: TTS):
    from voxlet.model.fused import _matrix

    return _matrix(tts.network.flow_lm.transformer.layers[0].self_attn.in_proj)


def test_float_matrices_read_the_parameters_in_place(tiny_tts):
    linear = tiny_tts.network.flow_lm.transformer.layers[0].linear1
    matrix = F32Matrix(linear.weight.detach().numpy())
    x = torch.randn(3, linear.in_features)
    before = matrix.apply(x.numpy())
    saved = linear.weight.detach().clone()
    try:
        with torch.no_grad():
            linear.weight.mul_(2)  # no copy: the matrix sees the change
        assert np.allclose(matrix.apply(x.numpy()), 2 * before, rtol=1e-5, atol=1e-6)
    finally:
        with torch.no_grad():
            linear.weight.copy_(saved)


def test_native_flow_lm_stack_matches_the_torch_layers(tts):
    flow_lm = tts.network.flow_lm
    native = flow_lm.transformer.native_stack
    prefix = torch.randn(1, 9, flow_lm.d_model, generator=torch.Generator().manual_seed(1))
    states = []
    outs = []
    for native_stack in (native, None):
        flow_lm.transformer.native_stack = native_stack
        try:
            state = flow_lm.init_state(32)
            flow_lm.prompt(prefix, state)
            outs.append(torch.cat(_steps(flow_lm, state, 12)).numpy())
            states.append(state)
        finally:
            flow_lm.transformer.native_stack = native
    got, want = outs
    # the prefill (9 rows at once) and 12 steps on the same matrices
    assert snr_db(want, got) > CLOSE[tts.precision]
    for a, b in zip(states[0].caches, states[1].caches, strict=True):
        assert a.offset == b.offset == 9 + 12
        assert snr_db(b.k[:, :, :21].numpy(), a.k[:, :, :21].numpy()) > CLOSE[tts.precision]
        assert snr_db(b.v[:, :, :21].numpy(), a.v[:, :, :21].numpy()) > CLOSE[tts.precision]
        assert torch.isnan(a.k[:, :, 21:]).all()  # nothing written past the positions used


def test_native_mimi_transformer_matches_the_torch_layers(tts):
    mimi = tts.network.mimi
    decoder = mimi.decoder_transformer.transformer
    native = decoder.native_stack
    g = torch.Generator().manual_seed(2)
    latents = [torch.randn(1, n, 32, generator=g) for n in (1, 1, 2, 4, 4, 4, 4)]  # > context
    audio, states = [], []
    for native_stack in (native, None):
        decoder.native_stack = native_stack
        try:
            state = mimi.init_decoder_state()
            audio.append(torch.cat([mimi.decode(x, state) for x in latents], -1).numpy())
            states.append(state)
        finally:
            decoder.native_stack = native
    got, want = audio
    assert snr_db(want, got) > CLOSE[tts.precision] - 5
    for a, b in zip(states[0].transformer, states[1].transformer, strict=True):
        assert a.offset == b.offset == 16 * 20
        assert torch.equal(a.pos, b.pos)  # the ring's slots hold the same positions
        assert snr_db(b.k.numpy(), a.k.numpy()) > CLOSE[tts.precision] - 5


def test_native_flow_head_matches_the_torch_layers(tts):
    from voxlet.model.layers.flow_net import lsd_decode

    flow_net = tts.network.flow_lm.flow_net
    native = flow_net.native_velocity
    g = torch.Generator().manual_seed(4)
    c = torch.randn(3, tts.network.flow_lm.d_model, generator=g)
    x0 = torch.randn(3, 32, generator=g)
    outs = []
    for native_velocity in (native, None):
        flow_net.native_velocity = native_velocity
        try:
            outs.append(torch.cat([lsd_decode(flow_net, c, x0, n) for n in (1, 2, 4)]).numpy())
        finally:
            flow_net.native_velocity = native
    got, want = outs
    assert snr_db(want, got) > CLOSE[tts.precision]


def test_native_stack_refuses_a_full_cache_and_bad_caches(tts):
    flow_lm = tts.network.flow_lm
    state = flow_lm.init_state(3)
    flow_lm.prompt(torch.zeros(1, 3, flow_lm.d_model), state)
    with pytest.raises(RuntimeError, match="KV cache full: 4 positions > capacity 3"):
        flow_lm.hidden(None, state)
    assert state.offset == 3  # nothing advanced
    with pytest.raises(RuntimeError, match="KV cache full: 5 positions > capacity 4"):
        flow_lm.prompt(torch.zeros(1, 5, flow_lm.d_model), flow_lm.init_state(4))
    native = flow_lm.transformer.native_stack._native
    x = np.zeros(flow_lm.d_model, np.float32)
    turns = np.zeros(2 * 8, np.float32)  # head_dim 16
    caches = flow_lm.init_state(5).caches
    keys, values = [c.k.numpy() for c in caches], [c.v.numpy() for c in caches]
    with pytest.raises(KernelError, match="2 key caches but 1 value caches"):
        native.forward(x, keys, values[:1], 0, turns)
    with pytest.raises(KernelError, match="C-contiguous"):
        native.forward(x, [k.transpose(0, 1, 3, 2) for k in keys], values, 0, turns)
    with pytest.raises(KernelError, match="position: 1 rows from 5 do not fit a cache of 5"):
        native.forward(x, keys, values, 5, turns)
    with pytest.raises(KernelError, match=r"x \(rows of d_model\): expected 64 elements, got 63"):
        native.forward(x[:63], keys, values, 0, turns)
    with pytest.raises(KernelError, match=r"turns \(head_dim per row\): expected 32"):
        native.forward(np.zeros((2, flow_lm.d_model), np.float32), keys, values, 0, turns)
    with pytest.raises(TypeError, match="already borrowed"):  # one array as keys and values
        native.forward(x, keys, keys, 0, turns)


def _random_transformer():
    from voxlet.model.layers.transformer import Transformer

    transformer = Transformer(32, 4, 2, 64, 10_000.0)
    with torch.no_grad():
        for p in transformer.parameters():
            p.copy_(torch.randn(p.shape))  # built empty: make every weight finite
    return transformer


def test_native_layers_refuse_other_dtypes_mixed_kinds_and_mixed_epsilons():
    from voxlet.model.fused import FusedStack
    from voxlet.model.quantize import _swap_linears

    transformer = _random_transformer().double()
    with pytest.raises(ValueError, match="native layers need float32 or int8 linears"):
        FusedStack(transformer)
    transformer = _random_transformer()
    with torch.no_grad():
        _swap_linears(transformer.layers[1])  # layer 0 float, layer 1 int8
    with pytest.raises(KernelError, match="every matrix must be an F32Matrix like the first"):
        FusedStack(transformer)
    transformer = _random_transformer()
    transformer.layers[1].norm2.eps = 1e-6
    with pytest.raises(ValueError, match=r"need one norm epsilon, got \[1e-06, 1e-05\]"):
        FusedStack(transformer)


def test_float_matrix_refuses_bad_weights():
    with pytest.raises(KernelError, match="weight must be C-contiguous"):
        F32Matrix(np.zeros((4, 3), np.float32).T)
    with pytest.raises(KernelError, match="bias: expected 4 elements, got 3"):
        F32Matrix(np.zeros((4, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(TypeError):
        F32Matrix(np.zeros((4, 3), np.float64))
    misaligned = np.frombuffer(bytes(4 * 12 + 1), np.float32, count=12, offset=1).reshape(4, 3)
    with pytest.raises(KernelError, match="weight must be aligned to its element size"):
        F32Matrix(misaligned)
