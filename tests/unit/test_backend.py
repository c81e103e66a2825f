"""The backend seam (`voxlet.model.backend`): the native stacks, flow heads and z projection
against PyTorch's layers over the same matrices (the same checkpoint built on the torch
backend), in both precisions and both layouts; which layers each backend serves; refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import fixture_path, load_tiny, snr_db
from voxlet import TTS, GenerationOptions
from voxlet._native import F32Matrix, Int8Matrix, KernelError
from voxlet.model.backend import StackLayout
from voxlet.model.backend.native import NativeBackend, NativeStack, matrix

# How close the native path stays to PyTorch's layers, in dB. float32: rounding only (another
# order of additions). int8: float rounding in the norms, attention and GELU can also flip an
# activation's int8 rounding.
CLOSE = {"fp32": 110.0, "int8": 45.0}


def _load(layout: str, precision: str, backend: str) -> TTS:
    if layout == "standard":
        return TTS.load(
            config=fixture_path("tiny_config.yaml"),
            tokenizer=fixture_path("tokenizer.model"),
            precision=precision,
            backend=backend,
        )
    return TTS.load(
        config=fixture_path("small/small_config.yaml"), precision=precision, backend=backend
    )


_PAIRS: dict[tuple[str, str], tuple[TTS, TTS]] = {}


@pytest.fixture(params=[(p, layout) for p in ("fp32", "int8") for layout in ("standard", "small")])
def pair(request) -> tuple[TTS, TTS]:
    """The same checkpoint on the native backend and on PyTorch's layers (the same int8
    matrices where quantized)."""
    precision, layout = request.param
    if request.param not in _PAIRS:
        _PAIRS[request.param] = (
            _load(layout, precision, "native"),
            _load(layout, precision, "torch"),
        )
    return _PAIRS[request.param]


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
        assert all(isinstance(s.kernel, NativeStack) for s in stacks)
        assert network.flow_lm.flow_net.kernel is not None
        native = network.flow_lm.transformer.kernel._native
        assert native.num_layers == len(network.flow_lm.transformer.layers)
        assert isinstance(_first_matrix(tts), kind)
        # the encoder side (one-shot voice cloning) is not the backend's
        assert network.mimi.encoder_transformer.transformer.kernel is None
        # a narrow SEANet decoder (48 wide here) decodes in one native call, its state the
        # kernel's own
        assert network.mimi.decoder.kernel is not None
        assert not isinstance(network.mimi.init_decoder_state().seanet, list)


def test_the_torch_backend_serves_nothing(pair):
    _, torch_tts = pair
    network = torch_tts.network
    stacks = (network.flow_lm.transformer, network.mimi.decoder_transformer.transformer)
    assert all(s.kernel is None for s in stacks) and network.flow_lm.flow_net.kernel is None
    assert network.mimi.decoder.kernel is None
    assert isinstance(network.mimi.init_decoder_state().seanet, list)


def test_a_decoder_with_int8_convolutions_stays_in_pytorch(monkeypatch):
    """Where int8 gave some SEANet convolutions int8 products (wide layouts), the native
    SEANet (float weights of its own) is not used: the decoder keeps PyTorch's layers."""
    from voxlet.model import quantize

    monkeypatch.setattr(quantize, "_INT8_MIN_DEPTH", 8)  # the tiny convolutions go int8 too
    network = load_tiny(precision="int8").network
    assert any(getattr(m, "int8", None) is not None for m in network.mimi.decoder.modules())
    assert network.mimi.decoder.kernel is None
    assert network.mimi.decoder_transformer.transformer.kernel is not None


def test_float_stacks_stay_in_pytorch_without_the_fast_float_kernel(monkeypatch, caplog):
    from voxlet.model.backend import native as native_backend

    monkeypatch.setattr(native_backend, "kernel_isa", lambda: "portable")
    caplog.set_level("DEBUG", logger="voxlet.model.backend")
    for precision, native in (("fp32", False), ("int8", True)):
        network = load_tiny(precision=precision).network
        stacks = (network.flow_lm.transformer, network.mimi.decoder_transformer.transformer)
        assert all((s.kernel is not None) == native for s in stacks), precision
        assert (network.flow_lm.flow_net.kernel is not None) == native, precision
    fallbacks = [r.getMessage() for r in caplog.records if "runs in PyTorch" in r.getMessage()]
    assert fallbacks and all("native-fp32" in m for m in fallbacks)
    assert len(fallbacks) == len(set(fallbacks))  # once per layout, not once per load
    load_tiny(precision="fp32")
    again = [r.getMessage() for r in caplog.records if "runs in PyTorch" in r.getMessage()]
    assert again == fallbacks


class _NoGroupedHeads(NativeBackend):
    """A backend that lacks grouped-query attention (as an older kernel would)."""

    def supports_stack(self, layout: StackLayout) -> bool:
        return layout.kv_heads == layout.heads and super().supports_stack(layout)


def test_a_layout_the_backend_lacks_falls_back_instead_of_failing():
    config = fixture_path("small/small_config.yaml")
    partial = TTS.load(config=config, backend=_NoGroupedHeads())
    network = partial.network
    assert network.flow_lm.transformer.kernel is None  # grouped heads: PyTorch's layers
    assert network.mimi.decoder_transformer.transformer.kernel is not None  # plain heads
    assert network.flow_lm.flow_net.kernel is not None
    reference = TTS.load(config=config, backend="torch")
    voice = str(fixture_path("small/small_voice.safetensors"))
    opts = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=6)
    got, want = (t.synthesize("Hello world.", voice, opts) for t in (partial, reference))
    assert got.shape == want.shape == (6 * 1920,)
    assert snr_db(want, got) > 100


def _first_matrix(tts: TTS):
    return matrix(tts.network.flow_lm.transformer.layers[0].self_attn.in_proj)


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


def test_native_flow_lm_stack_matches_the_torch_layers(pair):
    native = pair[0]
    d = native.network.flow_lm.d_model
    prefix = torch.randn(1, 9, d, generator=torch.Generator().manual_seed(1))
    states = []
    outs = []
    for tts in pair:
        flow_lm = tts.network.flow_lm
        state = flow_lm.init_state(32)
        flow_lm.prompt(prefix, state)
        outs.append(torch.cat(_steps(flow_lm, state, 12)).numpy())
        states.append(state)
    got, want = outs
    close = CLOSE[native.precision]
    # the prefill (9 rows at once) and 12 steps on the same matrices
    assert snr_db(want, got) > close
    for a, b in zip(states[0].caches, states[1].caches, strict=True):
        assert a.offset == b.offset == 9 + 12
        assert a.k.shape == b.k.shape  # the kv heads only, in both
        assert snr_db(b.k[:, :, :21].numpy(), a.k[:, :, :21].numpy()) > close
        assert snr_db(b.v[:, :, :21].numpy(), a.v[:, :, :21].numpy()) > close
        assert torch.isnan(a.k[:, :, 21:]).all()  # nothing written past the positions used


def test_native_z_projection_matches_the_torch_layers(pair):
    native = pair[0]
    if native.network.flow_lm.z_proj is None:
        assert native.network.flow_lm._z_kernel is None
        return
    h = torch.randn(1, native.network.flow_lm.d_model, generator=torch.Generator().manual_seed(5))
    assert native.network.flow_lm._z_kernel is not None
    got, want = (t.network.flow_lm.project(h).numpy() for t in pair)
    assert snr_db(want, got) > CLOSE[native.precision]


def test_native_mimi_transformer_matches_the_torch_layers(pair):
    g = torch.Generator().manual_seed(2)
    latents = [torch.randn(1, n, 32, generator=g) for n in (1, 1, 2, 4, 4, 4, 4)]  # > context
    audio, states = [], []
    for tts in pair:
        mimi = tts.network.mimi
        state = mimi.init_decoder_state()
        audio.append(torch.cat([mimi.decode(x, state) for x in latents], -1).numpy())
        states.append(state)
    got, want = audio
    precision = pair[0].precision
    assert snr_db(want, got) > CLOSE[precision] - 5
    for a, b in zip(states[0].transformer, states[1].transformer, strict=True):
        assert a.offset == b.offset == 16 * 20
        assert torch.equal(a.pos, b.pos)  # the ring's slots hold the same positions
        assert snr_db(b.k.numpy(), a.k.numpy()) > CLOSE[precision] - 5


def test_native_flow_head_matches_the_torch_layers(pair):
    """Three rows in one native call against the torch layers row by row: the native head
    gives each row what it gets alone (int8: each row quantized as one row is)."""
    g = torch.Generator().manual_seed(4)
    flow_net = pair[0].network.flow_lm.flow_net
    c = torch.randn(3, flow_net.layout.cond_dim, generator=g)
    x0 = torch.randn(3, 32, generator=g)
    native, layers = (t.network.flow_lm.flow_net for t in pair)
    got = torch.cat([native.sample(c, x0, n) for n in (1, 2, 4)]).numpy()
    want = torch.cat(
        [layers.sample(c[i : i + 1], x0[i : i + 1], n) for n in (1, 2, 4) for i in range(3)]
    ).numpy()
    assert snr_db(want, got) > CLOSE[pair[0].precision]


def test_native_stack_refuses_a_full_cache_and_bad_caches(tts):
    flow_lm = tts.network.flow_lm
    state = flow_lm.init_state(3)
    flow_lm.prompt(torch.zeros(1, 3, flow_lm.d_model), state)
    with pytest.raises(RuntimeError, match="KV cache full: 4 positions > capacity 3"):
        flow_lm.hidden(None, state)
    assert state.offset == 3  # nothing advanced
    with pytest.raises(RuntimeError, match="KV cache full: 5 positions > capacity 4"):
        flow_lm.prompt(torch.zeros(1, 5, flow_lm.d_model), flow_lm.init_state(4))
    native = flow_lm.transformer.kernel._native
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


def test_native_layers_refuse_other_dtypes_and_mixed_kinds():
    from voxlet.model.quantize import _swap_linears

    transformer = _random_transformer().double()
    with pytest.raises(ValueError, match="native layers need float32 or int8 linears"):
        NativeStack(transformer.params())
    transformer = _random_transformer()
    with torch.no_grad():
        _swap_linears(transformer.layers[1])  # layer 0 float, layer 1 int8
    with pytest.raises(
        KernelError, match="in_proj must be an F32Matrix like every other matrix of the stack"
    ):
        NativeStack(transformer.params())


def test_each_norm_keeps_its_own_epsilon():
    """Weights are named structures: a layer's norm carries its epsilon (no one epsilon
    shared by the whole stack), and the native stack follows it."""
    transformer = _random_transformer()
    transformer.layers[1].norm2.eps = 0.5
    transformer.eval().requires_grad_(False)
    native = NativeStack(transformer.params())
    x = torch.randn(1, 5, 32)
    want = transformer(x, transformer.init_state(1, 8))
    got = native(x, transformer.init_state(1, 8), _turns(transformer, 5))
    assert snr_db(want.numpy(), got.numpy()) > 110


def _turns(transformer, n: int) -> torch.Tensor:
    from voxlet.model.layers.rope import rotation

    attn = transformer.attention(0)
    return rotation(0, n, attn.head_dim, attn.max_period)


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
