"""The full-size english layout: a random checkpoint in the official shapes loads and streams."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from benches.make_checkpoint import write_checkpoint

from tests.conftest import fixture_path
from voxlet import TTS, GenerationOptions
from voxlet.config import ModelConfig
from voxlet.model.network import PocketTTS
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


def test_fullsize_random_checkpoint_loads_and_streams(fullsize_weights):
    cfg = official_config("english")
    tts = TTS.load(config=cfg, weights=fullsize_weights, tokenizer=fixture_path("tokenizer.model"))
    assert tts.has_voice_cloning
    opts = GenerationOptions(temperature=0.3, max_frames=3, seed=1, on_no_eos="ignore")
    frames = list(tts.stream("Hello world.", str(fixture_path("prompt.wav")), opts))
    assert len(frames) == 3
    audio = np.concatenate(frames)
    assert audio.dtype == np.float32 and np.isfinite(audio).all() and audio.std() > 0
    assert isinstance(tts.config, ModelConfig)
