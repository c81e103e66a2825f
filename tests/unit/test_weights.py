"""Checkpoint checks: every problem names the key and shapes; encoder-less files still work."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import fixture_path, load_tiny
from voxlet import TTS, DownloadError, VoiceError, WeightsError
from voxlet.model.network import is_cloning_key


@pytest.fixture(scope="module")
def tensors() -> dict[str, torch.Tensor]:
    return load_file(str(fixture_path("tiny_model.safetensors")))


def _load(tmp_path, tensors) -> TTS:
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    return load_tiny(str(path))


def test_missing_tensor_is_named(tmp_path, tensors):
    broken = dict(tensors)
    del broken["flow_lm.out_eos.weight"]
    with pytest.raises(
        WeightsError, match=r"missing tensor 'flow_lm.out_eos.weight' with shape \[1, 64\]"
    ):
        _load(tmp_path, broken)


def test_wrong_shape_names_key_and_both_shapes(tmp_path, tensors):
    broken = dict(tensors)
    broken["mimi.quantizer.output_proj.weight"] = torch.zeros(32, 48, 1)
    with pytest.raises(WeightsError) as e:
        _load(tmp_path, broken)
    assert "'mimi.quantizer.output_proj.weight' has shape [32, 48, 1]" in str(e.value)
    assert "expects [48, 32, 1]" in str(e.value)


def test_unexpected_tensor_is_named(tmp_path, tensors):
    extra = {**tensors, "flow_lm.transformer.layers.2.norm1.weight": torch.ones(64)}
    with pytest.raises(WeightsError, match=r"unexpected tensor 'flow_lm\.transformer\.layers\.2"):
        _load(tmp_path, extra)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(WeightsError, match="corrupt or not safetensors"):
        load_tiny(str(bad))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(fixture_path("tiny_model.safetensors").read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="corrupt or not safetensors"):
        load_tiny(str(truncated))
    with pytest.raises(DownloadError, match="model weights file not found"):
        TTS.load(
            config=fixture_path("tiny_config.yaml"),
            weights=tmp_path / "absent.safetensors",
            tokenizer=fixture_path("tokenizer.model"),
        )


@pytest.mark.parametrize("mode", ["absent", "zero"])
def test_checkpoint_without_encoder_uses_prebaked_voices(tmp_path, tensors, mode):
    if mode == "absent":
        stripped = {k: v for k, v in tensors.items() if not is_cloning_key(k)}
    else:
        stripped = {k: torch.zeros_like(v) if is_cloning_key(k) else v for k, v in tensors.items()}
    tts = _load(tmp_path, stripped)
    assert not tts.has_voice_cloning
    with pytest.raises(VoiceError, match="no voice-cloning encoder"):
        tts.voice(str(fixture_path("prompt.wav")))
    voice = tts.voice(str(fixture_path("tiny_voice.safetensors")))
    reference = load_tiny().synthesize("Hello.", voice, _forced())
    # Same weights, other buffer alignment: equal up to float rounding.
    assert abs(tts.synthesize("Hello.", voice, _forced()) - reference).max() < 1e-5


def _forced():
    from voxlet import GenerationOptions

    return GenerationOptions(temperature=0.0, max_frames=3, on_no_eos="ignore")
