"""precision="int8": int8 FlowLM linears, close to fp32, opt-in; bad values rejected."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import fixture_path, load_tiny, snr_db
from voxlet import TTS, ConfigError, GenerationOptions
from voxlet.model.quantize import Int8Linear

OPTS = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=12, on_no_eos="ignore")
TEXT = "Hello world. This is a test."


def test_int8_replaces_the_transformers_and_flow_head_linears(int8_tts, tiny_tts):
    flow_lm, mimi = int8_tts.network.flow_lm, int8_tts.network.mimi
    swapped = [m for m in flow_lm.modules() if isinstance(m, Int8Linear)]
    # 2 layers x 4 linears, flow head: cond, input, 2 x (2 mlp + 1 adaLN), final (2), 2 x 2 time
    assert len(swapped) == 8 + 1 + 1 + 6 + 2 + 4
    assert isinstance(flow_lm.input_linear, torch.nn.Linear)
    # the tiny Mimi decoder transformer (48 wide) is too narrow for int8 to pay: it stays
    # float (test_fullsize checks english's, 512 wide, goes int8)
    decoder = [m for m in mimi.decoder_transformer.modules() if isinstance(m, Int8Linear)]
    assert decoder == []
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


def test_int8_on_the_small_layout_is_native_and_close_to_fp32():
    """The english_2m-style fixture in int8: grouped-query stacks, z projection and the
    time-free head on int8 matrices in the native kernels, output close to fp32."""
    config = fixture_path("small/small_config.yaml")
    fp32, int8 = (TTS.load(config=config, precision=p, backend="native") for p in ("fp32", "int8"))
    flow_lm = int8.network.flow_lm
    assert isinstance(flow_lm.z_proj, Int8Linear)
    assert flow_lm.transformer.kernel is not None and flow_lm.flow_net.kernel is not None
    assert int8.network.mimi.decoder_transformer.transformer.kernel is not None
    voice = str(fixture_path("small/small_voice.safetensors"))
    latents = [torch.cat(list(t.latents(TEXT, t.voice(voice), OPTS))).numpy() for t in (fp32, int8)]
    assert 20 < snr_db(*latents) < 80  # close, and really quantized
    audio = [t.synthesize(TEXT, voice, OPTS) for t in (fp32, int8)]
    assert snr_db(*audio) > 20


def test_bad_precision_is_rejected():
    with pytest.raises(ConfigError, match="precision: must be one of fp32, int8"):
        TTS.load(config=fixture_path("tiny_config.yaml"), precision="int4")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_cloning_encoder_is_read_back_on_first_use(tmp_path, precision):
    import shutil

    from voxlet import WeightsError
    from voxlet.model.weights import cloning_weights_released

    weights = tmp_path / "model.safetensors"
    shutil.copy(fixture_path("tiny_model.safetensors"), weights)
    tts = TTS.load(
        config=fixture_path("tiny_config.yaml"),
        weights=weights,
        tokenizer=fixture_path("tokenizer.model"),
        precision=precision,
        backend="native",
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
    reference = load_tiny(encoder=True)  # the encoder read back is the checkpoint's
    with torch.no_grad():
        torch.testing.assert_close(
            tts.network.mimi.encode(audio), reference.network.mimi.encode(audio), rtol=0, atol=0
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


def test_both_precisions_map_the_text_embedding_from_the_checkpoint(int8_tts, tiny_tts):
    """Not copied: only the rows a text reads become resident. The same embeddings as fp32."""
    checkpoint = str(fixture_path("tiny_model.safetensors").resolve())
    for tts in (int8_tts, tiny_tts):
        address = tts.network.flow_lm.conditioner.embed.weight.data_ptr()
        mapped_from = [
            line.split(maxsplit=5)[-1].strip()
            for line in open("/proc/self/maps")
            if int(line.split("-")[0], 16) <= address < int(line.split()[0].split("-")[1], 16)
        ]
        assert mapped_from == [checkpoint], tts.precision
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
            backend="native",
        )
