"""Silent wrong results (issue 13, class 4, in part): non-finite weights, voices and prompts are
refused naming what holds them, and a meaningless --rate is an error, not the default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import fixture_path, load_tiny
from tests.integration.cli_helpers import MODEL, run_voxlet
from voxlet import TTS
from voxlet.audio import AudioError, read_audio, wav_header
from voxlet.errors import VoiceError, WeightsError


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_with_a_non_finite_weight_is_refused_naming_the_tensor(tmp_path, value):
    tensors = load_file(str(fixture_path("tiny_model.safetensors")))
    key = "flow_lm.out_norm.weight"
    tensors[key] = tensors[key].clone()
    tensors[key][3] = value
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad))
    with pytest.raises(WeightsError, match=f"tensor '{key}' holds NaN or infinite values"):
        TTS.load(
            config=fixture_path("tiny_config.yaml"),
            weights=bad,
            tokenizer=fixture_path("tokenizer.model"),
        )


def test_a_voice_file_with_nan_is_refused(tiny_tts, tmp_path):
    tensors = load_file(str(fixture_path("tiny_voice.safetensors")))
    key = "transformer.layers.1.self_attn/cache"
    tensors[key] = tensors[key].clone()
    tensors[key][0, 0, 2, 0, 0] = float("nan")
    bad = tmp_path / "nan_voice.safetensors"
    save_file(tensors, str(bad))
    with pytest.raises(VoiceError, match=r"layers\.1\.self_attn/cache holds NaN or infinite"):
        tiny_tts.voice(str(bad))
    conditioning = {"audio_prompt": torch.full((1, 3, tiny_tts.network.flow_lm.d_model), np.inf)}
    save_file(conditioning, str(bad))
    with pytest.raises(VoiceError, match="audio_prompt holds NaN or infinite"):
        tiny_tts.voice(str(bad))


def test_a_prompt_with_nan_samples_is_refused():
    tts = load_tiny(encoder=True)
    samples = np.zeros(24000, np.float32)
    samples[100] = np.nan
    with pytest.raises(VoiceError, match="voice prompt audio holds NaN or infinite samples"):
        tts.voice_from_audio(samples, 24000)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_float_wav_holding_non_finite_samples_is_refused_naming_the_file(tmp_path, value):
    path = tmp_path / "prompt.wav"
    samples = np.full(480, 0.1, np.float32)
    samples[7] = value
    path.write_bytes(wav_header(24000, 1, "f32", samples.nbytes) + samples.tobytes())
    with pytest.raises(AudioError, match=rf"{path.name}: invalid WAV data: sample 7 is "):
        read_audio(path)


@pytest.mark.parametrize("rate", ["0", "-5", "999", "44.1k"])
def test_a_meaningless_rate_is_an_error_not_the_default(tmp_path, rate):
    out = tmp_path / "o.wav"
    done = run_voxlet("say", "Hi.", *MODEL, "-o", str(out), "--rate", rate)
    assert done.returncode == 2 and b"--rate: must be an integer from 1000 to 768000" in done.stderr
    assert not out.exists()


def test_a_non_finite_latent_stops_the_stream_with_an_error():
    """Weights gone bad after loading (a NaN in the output norm): the stream raises instead of
    handing out silence."""
    from voxlet import GenerationOptions
    from voxlet.errors import StreamError

    tts = load_tiny()
    with torch.no_grad():
        tts.network.flow_lm.out_norm.weight[0] = float("nan")
    opts = GenerationOptions(temperature=0.0, max_frames=4, on_no_eos="ignore")
    with pytest.raises(StreamError, match="NaN or infinite"):
        tts.synthesize("Hello world.", str(fixture_path("tiny_voice.safetensors")), opts)
