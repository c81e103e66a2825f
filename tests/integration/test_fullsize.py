"""The full-size official layouts (english, english_2026-01 and the small english_2m / 7m / 18m):
random checkpoints in the official shapes load and stream."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from benches.make_checkpoint import write_checkpoint
from safetensors.torch import load_file, save_file

from tests.conftest import fixture_path
from voxlet import TTS, GenerationOptions
from voxlet.config import ModelConfig
from voxlet.errors import WeightsError
from voxlet.model.network import PocketTTS
from voxlet.model.quantize import Int8Linear
from voxlet.registry import official_config


@pytest.mark.parametrize("model", ["english", "english_2026-01"])
def test_official_layout_matches_reference_manifest(model):
    """Every key and shape of the reference's state dict, for the full-size configs."""
    manifest = json.loads(fixture_path("weights-manifest-english.json").read_text())
    entry = manifest["configs"][model]
    want = {key: t["shape"] for key, t in entry["tensors"].items()}
    with torch.device("meta"):
        network = PocketTTS(official_config(model))
    got = {key: list(t.shape) for key, t in network.state_dict().items()}
    assert got == want
    assert len(got) == entry["n_tensors"]


@pytest.fixture(scope="module")
def fullsize_weights(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("full") / "english.safetensors", "english")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_fullsize_random_checkpoint_loads_and_streams(fullsize_weights, precision):
    cfg = official_config("english")
    tts = TTS.load(
        config=cfg,
        weights=fullsize_weights,
        tokenizer=fixture_path("tokenizer.model"),
        precision=precision,
        backend="native",
    )
    assert tts.has_voice_cloning
    decoder = tts.network.mimi.decoder_transformer.transformer
    int8 = [m for m in decoder.modules() if isinstance(m, Int8Linear)]
    assert len(int8) == (2 * 4 if precision == "int8" else 0)  # 512 wide: int8 pays
    assert tts.network.mimi.decoder.kernel is None  # 512 wide: PyTorch's convolutions
    opts = GenerationOptions(temperature=0.3, max_frames=3, seed=1, on_no_eos="ignore")
    frames = list(tts.stream("Hello world.", str(fixture_path("prompt.wav")), opts))
    assert len(frames) == 3
    audio = np.concatenate(frames)
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and audio.std() > 0
    assert isinstance(tts.config, ModelConfig)


SMALL = ("english_2m", "english_7m", "english_18m")


@pytest.mark.parametrize("model", [m + refl for m in SMALL for refl in ("", "_refl")])
def test_small_layouts_match_reference_manifest(model):
    """Every key and shape of the reference's state dict for the full-size small configs,
    and the kv-heads-only voice cache the manifest derives."""
    manifest = json.loads(fixture_path("small/weights-manifest-small.json").read_text())
    entry = manifest["configs"][f"{model}_2026-10"]
    want = {key: t["shape"] for key, t in entry["tensors"].items()}
    cfg = official_config(model)
    with torch.device("meta"):
        network = PocketTTS(cfg)
    got = {key: list(t.shape) for key, t in network.state_dict().items()}
    assert got == want
    assert len(got) == entry["n_tensors"]
    assert sum(t.numel() for t in network.state_dict().values()) == entry["n_params"]["total"]
    attn = network.flow_lm.transformer.attention(0)
    cache = attn.init_state(1, 5)
    assert list(cache.k.shape) == [1, attn.kv_heads, 5, attn.head_dim]


@pytest.fixture(scope="module", params=SMALL)
def small_weights(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / f"{request.param}.safetensors"
    return request.param, write_checkpoint(path, request.param)


@pytest.mark.parametrize("backend", ["native", "torch-free"])
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_fullsize_small_checkpoints_load_and_stream(small_weights, precision, backend):
    model, weights = small_weights
    tts = TTS.load(
        config=official_config(model),
        weights=weights,
        tokenizer=fixture_path("tokenizer.model"),
        precision=precision,
        backend=backend,
    )
    if backend == "native":
        flow_lm = tts.network.flow_lm
        assert flow_lm.transformer.kernel is not None and flow_lm.flow_net.kernel is not None
        assert tts.network.mimi.decoder.kernel is not None  # 128 wide: the native SEANet
    else:
        assert tts.network is None
    opts = GenerationOptions(max_frames=3, seed=1, on_no_eos="ignore")  # the config's defaults
    frames = list(tts.stream("Hello world.", str(fixture_path("prompt.wav")), opts))
    assert len(frames) == 3
    audio = np.concatenate(frames)
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and audio.std() > 0


def test_a_small_checkpoint_of_the_wrong_shape_names_key_and_both_shapes(small_weights, tmp_path):
    """One tensor of another width (a z projection of 63 rows) fails the load, naming the key
    and both shapes on one line."""
    model, weights = small_weights
    tensors = load_file(str(weights))
    key = "flow_lm.z_proj.weight"
    rows, cols = tensors[key].shape
    tensors[key] = tensors[key][:-1].clone()
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad))
    with pytest.raises(WeightsError) as e:
        TTS.load(
            config=official_config(model), weights=bad, tokenizer=fixture_path("tokenizer.model")
        )
    message = str(e.value)
    assert (
        f"tensor {key!r} has shape [{rows - 1}, {cols}], the model expects [{rows}, {cols}]"
        in message
    )
    assert "\n" not in message


@pytest.fixture(scope="module")
def fullsize_bf16(tmp_path_factory):
    path = tmp_path_factory.mktemp("bf16") / "english.safetensors"
    return write_checkpoint(path, "english", torch.bfloat16)


def test_the_torch_free_model_reads_bf16_in_place_and_agrees_with_the_pytorch_path(fullsize_bf16):
    """The official files' storage: the torch-free model multiplies by the bf16 weights as
    stored (half the bytes a step streams), the PyTorch path by float32 copies of them."""
    from voxlet.model.voice import voice_from_conditioning

    kwargs = {
        "config": official_config("english"),
        "weights": fullsize_bf16,
        "tokenizer": fixture_path("tokenizer.model"),
    }
    free = TTS.load(**kwargs, backend="torch-free")
    assert free.network is None and free.model.dtypes == ["BF16"]
    reference = TTS.load(**kwargs, backend="native")
    prefix = (np.random.default_rng(0).standard_normal((6, 1024)) * 0.1).astype(np.float32)
    voice_free = free.voice(free.model.voice_from_conditioning(prefix))
    with torch.no_grad():
        flow_lm = reference.network.flow_lm
        state = voice_from_conditioning(flow_lm, torch.from_numpy(prefix)[None])
        voice_ref = reference.voice(state)
    np.testing.assert_allclose(
        voice_free.state.keys[0], voice_ref.state.keys[0][0].numpy(), atol=1e-4, rtol=1e-4
    )
    opts = GenerationOptions(temperature=0.0, max_frames=3, eos_threshold=1e9, on_no_eos="ignore")
    a = np.concatenate(list(free.latents("Hello world.", voice_free, opts)))
    b = np.concatenate([t.numpy() for t in reference.latents("Hello world.", voice_ref, opts)])
    np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-3)
    audio = free.synthesize("Hello world.", voice_free, opts)
    assert audio.shape == (3 * 1920,) and np.isfinite(audio).all() and audio.std() > 0
