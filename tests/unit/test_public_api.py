from __future__ import annotations

import numpy as np
import pytest

import voxlet
from tests.conftest import fixture_path
from voxlet import TTS, ConfigError, DownloadError, GenerationOptions, TextError


def test_public_names():
    assert sorted(voxlet.__all__) == sorted(
        [
            "TTS",
            "ConfigError",
            "DownloadError",
            "GenerationOptions",
            "SinkError",
            "StreamError",
            "TextError",
            "Voice",
            "VoiceError",
            "VoxletError",
            "WeightsError",
            "WordTiming",
            "__version__",
            "tune_process",
        ]
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("temperature", -1.0),
        ("lsd_steps", 0),
        ("noise_clamp", 0.0),
        ("frames_after_eos", -1),
        ("max_frames", 0),
        ("max_tokens_per_chunk", 0),
        ("eos_threshold", float("nan")),
        ("normalize", "yes"),
    ],
)
def test_options_validate(field, value):
    with pytest.raises(ConfigError, match=field):
        GenerationOptions(**{field: value})


def test_empty_text_is_a_clear_error(tiny_tts):
    with pytest.raises(TextError, match="cannot be empty"):
        list(tiny_tts.stream("  \n ", str(fixture_path("tiny_voice.safetensors"))))


def test_seeded_sampling_is_reproducible_and_noise_matters(tiny_tts):
    voice = tiny_tts.voice(str(fixture_path("tiny_voice.safetensors")))
    opts = GenerationOptions(temperature=0.7, max_frames=5, seed=7, on_no_eos="ignore")
    a = tiny_tts.synthesize("Hello there.", voice, opts)
    b = tiny_tts.synthesize("Hello there.", voice, opts)
    c = tiny_tts.synthesize("Hello there.", voice, opts.replace(seed=8))
    clamped = tiny_tts.synthesize("Hello there.", voice, opts.replace(noise_clamp=0.1))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, clamped)


def test_long_text_streams_every_chunk(tiny_tts):
    voice = tiny_tts.voice(str(fixture_path("tiny_voice.safetensors")))
    opts = GenerationOptions(
        temperature=0.0, max_frames=2, max_tokens_per_chunk=10, on_no_eos="ignore"
    )
    text = "One two three four. Five six seven eight. Nine ten eleven twelve."
    assert len(tiny_tts.chunks(text, opts)) == 3
    assert len(list(tiny_tts.stream(text, voice, opts))) == 3 * 2


def test_official_model_offline_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("VOXLET_OFFLINE", "1")
    monkeypatch.setenv("VOXLET_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("VOXLET_WEIGHTS", raising=False)
    with pytest.raises(DownloadError) as e:
        voxlet.TTS.load("english")
    message = str(e.value)
    assert "huggingface-cli download kyutai/pocket-tts-without-voice-cloning" in message
    assert "languages/english/model.safetensors --revision a7056f505a4a" in message
    assert "--weights PATH" in message and "VOXLET_WEIGHTS" in message


def test_unreachable_hub_fails_fast_with_advice(monkeypatch, tmp_path):
    from voxlet import hub

    monkeypatch.delenv("VOXLET_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("VOXLET_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(hub, "_hub_reachable", lambda: False)
    with pytest.raises(DownloadError) as e:
        voxlet.TTS.load("english")
    assert "cannot be reached (no network connection)" in str(e.value)
    assert "--weights PATH" in str(e.value)


def test_text_is_normalised_for_the_models_language_unless_asked_not_to(tiny_tts):
    opts = GenerationOptions()
    [chunk] = tiny_tts.chunks("Dr. Lee paid $4.50 on 1999-03-14.", opts)
    assert chunk.text == (
        "Doctor Lee paid four dollars and fifty cents on March fourteenth, nineteen ninety-nine."
    )
    [chunk] = tiny_tts.chunks("Dr. Lee paid $4.50.", opts.replace(normalize=False))
    assert "$4.50" in chunk.text
    assert tiny_tts.language == "en"  # a local config is read as English


def test_a_model_of_another_language_reads_its_text_as_written():
    french = TTS.load(
        config=fixture_path("tiny_config.yaml"),
        weights=fixture_path("tiny_model.safetensors"),
        tokenizer=fixture_path("tokenizer.model"),
        language="fr",
    )
    [chunk] = french.chunks("Il a 5 ans.", GenerationOptions())
    assert "5" in chunk.text
    with pytest.raises(ConfigError, match="language"):
        TTS.load(config=fixture_path("tiny_config.yaml"), language=5)  # type: ignore[arg-type]


def test_official_models_know_their_language():
    from voxlet import registry

    assert registry.language_code("english") == "en"
    assert registry.language_code("english_2m") == "en"
    assert registry.language_code("french_24l") == "fr"
    assert registry.language_code("german") == "de"
