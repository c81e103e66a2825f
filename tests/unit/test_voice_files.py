"""Voice state files: official format round trip, legacy forms, and model mismatch errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import fixture_path
from voxlet import GenerationOptions, VoiceError

OPTS = GenerationOptions(temperature=0.0, max_frames=4, on_no_eos="ignore")


def test_save_then_load_is_identical(tiny_tts, tmp_path):
    voice = tiny_tts.voice(str(fixture_path("prompt.wav")))
    out = tmp_path / "v.safetensors"
    tiny_tts.save_voice(voice, out)
    again = tiny_tts.voice(str(out))
    assert all(torch.equal(a, b) for a, b in zip(voice.state.keys, again.state.keys, strict=True))
    assert set(load_file(str(out))) == set(load_file(str(fixture_path("tiny_voice.safetensors"))))


def test_legacy_current_end_form(tiny_tts, tmp_path):
    official = load_file(str(fixture_path("tiny_voice.safetensors")))
    legacy = {}
    for key, value in official.items():
        module, field = key.split("/")
        if field == "cache":
            legacy[key] = value
            legacy[f"{module}/current_end"] = torch.zeros(value.shape[2])
    path = tmp_path / "legacy.safetensors"
    save_file(legacy, str(path))
    a = tiny_tts.synthesize("Hi there.", str(path), OPTS)
    b = tiny_tts.synthesize("Hi there.", str(fixture_path("tiny_voice.safetensors")), OPTS)
    assert (a == b).all()


def test_audio_prompt_conditioning_form(tiny_tts, tmp_path):
    g = load_file(str(fixture_path("tiny_golden.safetensors")))
    path = tmp_path / "web.safetensors"
    save_file({"audio_prompt": g["voice_conditioning"]}, str(path))
    a = tiny_tts.voice(str(path)).state.to_tensors()
    b = load_file(str(fixture_path("tiny_voice.safetensors")))
    torch.testing.assert_close(
        a["transformer.layers.1.self_attn/cache"],
        b["transformer.layers.1.self_attn/cache"],
        atol=2e-5,
        rtol=2e-5,
    )


def test_voice_for_another_model_is_rejected(tiny_tts, tmp_path):
    path = tmp_path / "big.safetensors"
    save_file(
        {
            "transformer.layers.0.self_attn/cache": torch.zeros(2, 1, 5, 16, 64),
            "transformer.layers.0.self_attn/offset": torch.tensor([5]),
        },
        str(path),
    )
    with pytest.raises(VoiceError, match=r"expects \[2, 1, T, 4, 16\]"):
        tiny_tts.voice(str(path))


def test_unknown_voice_and_unwritable_output(tiny_tts, tmp_path):
    with pytest.raises(VoiceError, match="unknown voice 'nobody'"):
        tiny_tts.voice("nobody")
    with pytest.raises(VoiceError, match="voice file not found"):
        tiny_tts.voice(str(tmp_path / "missing.wav"))
    voice = tiny_tts.voice(str(fixture_path("tiny_voice.safetensors")))
    with pytest.raises(VoiceError, match="cannot write voice file"):
        tiny_tts.save_voice(voice, tmp_path / "no-such-dir" / "v.safetensors")
