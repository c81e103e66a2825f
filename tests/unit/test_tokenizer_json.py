"""`tokenizer=` accepts a Hugging Face tokenizers `.json`: same ids, same audio as the `.model`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import fixture_path
from tests.spm_to_json import convert
from voxlet import TTS, ConfigError, GenerationOptions
from voxlet.text import load_tokenizer


@pytest.fixture(scope="module")
def json_path(tmp_path_factory):
    return convert(fixture_path("tokenizer.model"), tmp_path_factory.mktemp("tok") / "t.json")


def test_same_ids_on_every_reference_case(json_path):
    spm, hf = load_tokenizer(fixture_path("tokenizer.model")), load_tokenizer(json_path)
    cases = json.loads(fixture_path("text_prep_cases.json").read_text())["cases"]
    texts = [ch["prepared"] for c in cases for ch in c.get("chunks", [])]
    assert len(texts) > 20
    for text in texts:
        assert hf.encode(text) == spm.encode(text)
        assert hf.decode(spm.encode(text)) == spm.decode(spm.encode(text))


def test_tts_with_json_tokenizer_matches_golden(json_path, golden):
    tts = TTS.load(
        config=fixture_path("tiny_config.yaml"),
        weights=fixture_path("tiny_model.safetensors"),
        tokenizer=json_path,
    )
    opts = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=12, on_no_eos="ignore")
    audio = tts.synthesize("Hello world. This is a test.", str(fixture_path("prompt.wav")), opts)
    np.testing.assert_allclose(audio, golden["audio_generate_api"].numpy(), atol=2e-5, rtol=2e-5)


def test_bad_tokenizer_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="cannot load tokenizer"):
        load_tokenizer(bad)
    with pytest.raises(ConfigError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "none.model")
