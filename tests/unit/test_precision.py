"""precision="int8": int8 FlowLM linears, close to fp32, opt-in; bad values rejected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import fixture_path
from voxlet import TTS, ConfigError, GenerationOptions
from voxlet.model.quantize import Int8Linear

OPTS = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=12, on_no_eos="ignore")
TEXT = "Hello world. This is a test."


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((reference - other) ** 2).sum()))


@pytest.fixture(scope="module")
def int8_tts() -> TTS:
    return TTS.load(
        config=fixture_path("tiny_config.yaml"),
        weights=fixture_path("tiny_model.safetensors"),
        tokenizer=fixture_path("tokenizer.model"),
        precision="int8",
    )


def test_int8_replaces_the_transformers_and_flow_head_linears(int8_tts, tiny_tts):
    flow_lm, mimi = int8_tts.network.flow_lm, int8_tts.network.mimi
    swapped = [m for m in flow_lm.modules() if isinstance(m, Int8Linear)]
    # 2 layers x 4 linears, flow head: cond, input, 2 x (2 mlp + 1 adaLN), final (2), 2 x 2 time
    assert len(swapped) == 8 + 1 + 1 + 6 + 2 + 4
    assert isinstance(flow_lm.input_linear, torch.nn.Linear)
    decoder = [m for m in mimi.decoder_transformer.modules() if isinstance(m, Int8Linear)]
    assert len(decoder) == 2 * 4
    assert not any(isinstance(m, Int8Linear) for m in mimi.encoder_transformer.modules())
    assert tiny_tts.precision == "fp32" and int8_tts.precision == "int8"


def test_int8_stays_close_to_fp32(int8_tts, tiny_tts):
    voice = tiny_tts.voice(str(fixture_path("tiny_voice.safetensors")))
    fp32 = torch.cat(list(tiny_tts.latents(TEXT, voice, OPTS))).numpy()
    int8 = torch.cat(list(int8_tts.latents(TEXT, voice, OPTS))).numpy()
    assert 20 < snr_db(fp32, int8) < 80  # close, and really quantized
    audio32 = tiny_tts.synthesize(TEXT, voice, OPTS)
    audio8 = int8_tts.synthesize(TEXT, voice, OPTS)
    assert snr_db(audio32, audio8) > 20


def test_bad_precision_is_rejected():
    with pytest.raises(ConfigError, match="precision: must be one of fp32, int8"):
        TTS.load(config=fixture_path("tiny_config.yaml"), precision="int4")


def test_int8_reads_the_cloning_encoder_back_on_first_use(tmp_path, tiny_tts):
    import shutil

    from voxlet import WeightsError
    from voxlet.model.weights import cloning_weights_released

    weights = tmp_path / "model.safetensors"
    shutil.copy(fixture_path("tiny_model.safetensors"), weights)
    tts = TTS.load(
        config=fixture_path("tiny_config.yaml"),
        weights=weights,
        tokenizer=fixture_path("tokenizer.model"),
        precision="int8",
    )
    assert cloning_weights_released(tts.network)  # not held while only speaking
    from safetensors.torch import load_file

    original = load_file(str(fixture_path("tiny_model.safetensors")))
    mimi_encoder = tts.network.mimi.encoder
    with pytest.raises(WeightsError, match="voice-cloning"):
        weights.write_bytes(b"not a checkpoint")
        tts.voice(str(fixture_path("prompt.wav")))
    assert cloning_weights_released(tts.network)
    shutil.copy(fixture_path("tiny_model.safetensors"), weights)
    voice = tts.voice(str(fixture_path("prompt.wav")))
    assert not cloning_weights_released(tts.network)
    assert voice.state.n_positions > 0
    w = mimi_encoder.model[0].conv.weight
    torch.testing.assert_close(w, original["mimi.encoder.model.0.conv.weight"].float())
    assert len(tts.synthesize(TEXT, voice, OPTS)) == 12 * 1920
    audio = torch.randn(1, 1, 3 * 1920, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the encoder read back is the fp32 model's encoder
        torch.testing.assert_close(
            tts.network.mimi.encode(audio), tiny_tts.network.mimi.encode(audio), rtol=0, atol=0
        )


def test_int8_load_is_quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's deprecation notice must not reach users
        TTS.load(
            config=fixture_path("tiny_config.yaml"),
            weights=fixture_path("tiny_model.safetensors"),
            tokenizer=fixture_path("tokenizer.model"),
            precision="int8",
        )


def test_int8_maps_the_text_embedding_from_the_checkpoint(int8_tts, tiny_tts):
    """Not copied: only the rows a text reads become resident. The same embeddings as fp32."""
    weight = int8_tts.network.flow_lm.conditioner.embed.weight
    address = weight.data_ptr()
    checkpoint = str(fixture_path("tiny_model.safetensors").resolve())
    mapped_from = [
        line.split(maxsplit=5)[-1].strip()
        for line in open("/proc/self/maps")
        if int(line.split("-")[0], 16) <= address < int(line.split()[0].split("-")[1], 16)
    ]
    assert mapped_from == [checkpoint]
    ids = torch.tensor([[1, 7, 300, 7]])
    with torch.no_grad():
        torch.testing.assert_close(
            int8_tts.network.flow_lm.embed_tokens(ids),
            tiny_tts.network.flow_lm.embed_tokens(ids),
            rtol=0,
            atol=0,
        )


def test_a_text_embedding_that_does_not_fit_is_refused(monkeypatch):
    import voxlet.model.weights as weights
    from voxlet import WeightsError

    monkeypatch.setattr(weights, "TEXT_EMBEDDING_KEY", "flow_lm.bos_emb")  # wrong shape
    with pytest.raises(WeightsError, match=r"'flow_lm.bos_emb' is float32 \[32\]"):
        TTS.load(
            config=fixture_path("tiny_config.yaml"),
            weights=fixture_path("tiny_model.safetensors"),
            tokenizer=fixture_path("tokenizer.model"),
            precision="int8",
        )


def _steps(flow_lm, state, n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    outs = []
    for _ in range(n):
        latent = torch.randn(1, 32, generator=g)
        outs.append(flow_lm.hidden(latent, state))
    return outs


def test_native_int8_stack_matches_the_torch_int8_layers(int8_tts):
    flow_lm = int8_tts.network.flow_lm
    native = flow_lm.transformer.int8_stack
    assert native is not None  # int8 mode runs every prefill and generated frame through it
    prefix = torch.randn(1, 9, flow_lm.d_model, generator=torch.Generator().manual_seed(1))
    states = []
    outs = []
    for int8_stack in (native, None):
        flow_lm.transformer.int8_stack = int8_stack
        try:
            state = flow_lm.init_state(32)
            flow_lm.prompt(prefix, state)
            outs.append(torch.cat(_steps(flow_lm, state, 12)).numpy())
            states.append(state)
        finally:
            flow_lm.transformer.int8_stack = native
    got, want = outs
    # the prefill (9 rows at once) and 12 steps on the same int8 matrices; only float rounding
    # in the norms, attention and GELU differs, and it can flip an activation's int8 rounding
    assert snr_db(want, got) > 50
    for a, b in zip(states[0].caches, states[1].caches, strict=True):
        assert a.offset == b.offset == 9 + 12
        assert snr_db(b.k[:, :, :21].numpy(), a.k[:, :, :21].numpy()) > 45
        assert snr_db(b.v[:, :, :21].numpy(), a.v[:, :, :21].numpy()) > 45
        assert torch.isnan(a.k[:, :, 21:]).all()  # nothing written past the positions used


def test_native_stack_refuses_a_full_cache_and_bad_caches(int8_tts):
    from voxlet._audio import KernelError

    flow_lm = int8_tts.network.flow_lm
    state = flow_lm.init_state(3)
    flow_lm.prompt(torch.zeros(1, 3, flow_lm.d_model), state)
    with pytest.raises(RuntimeError, match="KV cache full: 4 positions > capacity 3"):
        flow_lm.hidden(None, state)
    assert state.offset == 3  # nothing advanced
    with pytest.raises(RuntimeError, match="KV cache full: 5 positions > capacity 4"):
        flow_lm.prompt(torch.zeros(1, 5, flow_lm.d_model), flow_lm.init_state(4))
    native = flow_lm.transformer.int8_stack._native
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


def test_native_mimi_transformer_matches_the_torch_int8_layers(int8_tts):
    mimi = int8_tts.network.mimi
    decoder = mimi.decoder_transformer.transformer
    native = decoder.int8_stack
    assert native is not None  # int8 mode runs every decode's transformer through it
    g = torch.Generator().manual_seed(2)
    latents = [torch.randn(1, n, 32, generator=g) for n in (1, 1, 2, 4, 4, 4, 4)]  # > context
    audio, states = [], []
    for int8_stack in (native, None):
        decoder.int8_stack = int8_stack
        try:
            state = mimi.init_decoder_state()
            audio.append(torch.cat([mimi.decode(x, state) for x in latents], -1).numpy())
            states.append(state)
        finally:
            decoder.int8_stack = native
    got, want = audio
    assert snr_db(want, got) > 40
    for a, b in zip(states[0].transformer, states[1].transformer, strict=True):
        assert a.offset == b.offset == 16 * 20
        assert torch.equal(a.pos, b.pos)  # the ring's slots hold the same positions
        assert snr_db(b.k.numpy(), a.k.numpy()) > 40


def test_native_flow_head_matches_the_torch_int8_layers(int8_tts):
    from voxlet.model.layers.flow_net import lsd_decode

    flow_net = int8_tts.network.flow_lm.flow_net
    native = flow_net.int8_velocity
    assert native is not None  # int8 mode runs every frame's flow head through it
    g = torch.Generator().manual_seed(4)
    c = torch.randn(3, int8_tts.network.flow_lm.d_model, generator=g)
    x0 = torch.randn(3, 32, generator=g)
    outs = []
    for int8_velocity in (native, None):
        flow_net.int8_velocity = int8_velocity
        try:
            outs.append(torch.cat([lsd_decode(flow_net, c, x0, n) for n in (1, 2, 4)]).numpy())
        finally:
            flow_net.int8_velocity = native
    got, want = outs
    assert snr_db(want, got) > 50


def test_native_layers_refuse_float_linears_and_mixed_norm_epsilons():
    from voxlet.model.layers.transformer import Transformer
    from voxlet.model.quantize import Int8Stack, _swap_linears

    transformer = Transformer(32, 4, 2, 64, 10_000.0)
    with torch.no_grad():
        for p in transformer.parameters():
            p.copy_(torch.randn(p.shape))  # built empty: make every weight finite
    with pytest.raises(ValueError, match="native int8 layers need Int8Linear linears"):
        Int8Stack(transformer)
    with torch.no_grad():
        _swap_linears(transformer)
    transformer.layers[1].norm2.eps = 1e-6
    with pytest.raises(ValueError, match=r"need one norm epsilon, got \[1e-06, 1e-05\]"):
        Int8Stack(transformer)
