"""The torch-free model against the PyTorch one on the same checkpoints: it reads exactly the
PyTorch model's keys in every fixture layout, and its int8 (the same int8 matrices and kernels,
other float glue) stays close to the PyTorch path's int8."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import fixture_path
from voxlet import TTS, GenerationOptions
from voxlet.config import ModelConfig
from voxlet.native.checkpoint import Checkpoint
from voxlet.native.speech import NativeSpeech

VOICE = str(fixture_path("tiny_voice.safetensors"))
TEXT = "Hello there, my friend."


@pytest.mark.parametrize(
    "config", ["tiny_config.yaml", "small/small_config.yaml", "small/small_config_drifting.yaml"]
)
def test_the_torch_free_model_reads_every_key_the_pytorch_model_has(config, tmp_path):
    cfg = ModelConfig.load(fixture_path(config))
    weights = cfg.resolve(cfg.weights_path)
    model = NativeSpeech(cfg, weights)
    model.encoder()  # the cloning keys too
    free = set(Checkpoint(weights).keys())
    network = TTS.load(config=fixture_path(config), backend="torch").network
    assert network is not None
    assert free == set(network.state_dict())


def test_int8_runs_natively_and_stays_near_the_torch_paths_int8(int8_tts):
    free8 = TTS.load(
        config=fixture_path("tiny_config.yaml"), backend="torch-free", precision="int8"
    )
    opts = GenerationOptions(temperature=0.0, max_frames=6, on_no_eos="ignore", eos_threshold=1e9)
    voice_free, voice_torch = free8.voice(VOICE), int8_tts.voice(VOICE)
    a = np.concatenate(list(free8.latents(TEXT, voice_free, opts)))
    b = np.concatenate([t.numpy() for t in int8_tts.latents(TEXT, voice_torch, opts)])
    # the same int8 matrices and kernels; the float glue around them differs in rounding
    np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-3)
