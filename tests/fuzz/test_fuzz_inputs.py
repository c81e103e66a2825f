"""Fuzzing every outside input the Python side takes: text (any Unicode, fragmented, huge,
degenerate) through to tokens and chunks; generation options; config values; and corrupted
checkpoints, voice files and audio prompts. Each input either works or raises one typed voxlet
error (a ValueError or OSError subclass) with a one-line message; nothing else.

Examples per property come from the hypothesis profile: "ci" by default, "fuzz" under
`make fuzz` (HYPOTHESIS_PROFILE=fuzz).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import fixture_path
from voxlet import TTS, GenerationOptions
from voxlet.config import ModelConfig
from voxlet.errors import ConfigError, TextError, VoiceError, VoxletError, WeightsError
from voxlet.text.markup import MAX_BREAK_S, Pause

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")  # registered in tests/conftest.py

BUDGET = 50


def one_line(error: BaseException) -> None:
    text = str(error)
    assert text and "\n" not in text, repr(text)
    assert isinstance(error, ValueError | OSError) or isinstance(error, VoxletError)


# Text ----------------------------------------------------------------------------------------

_PIECES = st.one_of(
    st.text(),  # any Unicode, surrogates included
    st.text(alphabet=st.characters(categories=["Zs", "Cc", "Cf", "P", "S"])),  # no letters
    st.sampled_from(["...", "—", "?!", "\u200b", "\x00", "3.14", "U.S.A.", "e.g.,", "'", '"']),
    st.integers(1, 3000).map(lambda n: "x" * n),  # one long word
    st.sampled_from(['<break time="1s"/>', "<p>", "</p>", "<", "<b>", "<break", "\n\n", "$5"]),
)
TEXT = st.lists(_PIECES, min_size=1, max_size=12).map(" ".join)


@given(text=TEXT, budget=st.integers(8, 80))
def test_any_text_gives_bounded_chunks_or_a_text_error(tiny_tts, text, budget):
    opts = GenerationOptions(max_tokens_per_chunk=budget)
    try:
        plans = tiny_tts.plans(text, opts)
    except TextError as e:
        one_line(e)
        return
    assert any(not isinstance(p, Pause) for p in plans)
    for plan in plans:
        if isinstance(plan, Pause):
            assert 0 <= plan.seconds <= MAX_BREAK_S
            continue
        n = int(plan.token_ids.shape[0])
        assert 1 <= n <= budget
        assert plan.max_frames >= 1


@settings(max_examples=8 if PROFILE == "ci" else 200)
@given(letters=st.integers(10_000, 200_000))
def test_a_huge_word_is_cut_at_the_budget(tiny_tts, letters):
    plans = tiny_tts.plans("a" * letters, GenerationOptions())
    assert all(int(p.token_ids.shape[0]) <= 50 for p in plans if not isinstance(p, Pause))


# Options -------------------------------------------------------------------------------------

_NUMBER = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.0, 1e-9, 1e9]),
)
_OPTION_FIELDS = [
    "temperature",
    "lsd_steps",
    "noise_clamp",
    "eos_threshold",
    "frames_after_eos",
    "max_frames",
    "max_tokens_per_chunk",
    "seed",
]


@given(values=st.fixed_dictionaries({}, optional={k: _NUMBER for k in _OPTION_FIELDS}))
def test_any_options_are_refused_in_one_line_or_plan(tiny_tts, values):
    try:
        opts = GenerationOptions(**values)
    except (ConfigError, TypeError) as e:
        assert not isinstance(e, TypeError), e  # typed: never a bare TypeError
        one_line(e)
        return
    for plan in tiny_tts.plans("Hello there.", opts):
        assert plan.max_frames >= 1 and math.isfinite(plan.temperature)


# Configs -------------------------------------------------------------------------------------

_CONFIG = yaml.safe_load(fixture_path("tiny_config.yaml").read_text())


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    else:
        yield prefix


PATHS = sorted(_paths(_CONFIG))
_VALUE = st.one_of(
    _NUMBER,
    st.text(max_size=20),
    st.booleans(),
    st.lists(st.integers(-5, 50), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@given(path=st.sampled_from(PATHS), value=_VALUE)
def test_any_config_value_is_refused_naming_the_key_or_accepted(path, value):
    data = yaml.safe_load(fixture_path("tiny_config.yaml").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        ModelConfig.from_dict(data)
    except ConfigError as e:
        one_line(e)


# Corrupt files -------------------------------------------------------------------------------

_MUTATION = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=8),
    ),
    st.tuples(
        st.just("header"),
        st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=8),
    ),
)


def corrupt(data: bytes, mutation) -> bytes:
    kind, how = mutation
    out = bytearray(data)
    if kind == "truncate":
        return bytes(out[: int(how * len(out))])
    for where, value in how:
        at = int(where * (len(out) - 1)) if kind == "flip" else min(where, len(out) - 1)
        out[at] = value
    return bytes(out)


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


_CHECKPOINT = fixture_path("tiny_model.safetensors").read_bytes()
_VOICE = fixture_path("tiny_voice.safetensors").read_bytes()
_PROMPT = fixture_path("prompt.wav").read_bytes()


@settings(max_examples=25 if PROFILE == "ci" else 500)
@given(mutation=_MUTATION)
@example(mutation=("flip", [(0.0, 230)]))  # a header that puts tensors off their alignment
def test_a_corrupt_checkpoint_is_refused_or_loads(tmp_path_factory, mutation):
    path = write(
        tmp_path_factory.mktemp("ckpt"), "model.safetensors", corrupt(_CHECKPOINT, mutation)
    )
    try:
        tts = TTS.load(
            config=fixture_path("tiny_config.yaml"),
            weights=path,
            tokenizer=fixture_path("tokenizer.model"),
        )
    except (WeightsError, ConfigError) as e:
        one_line(e)
        return
    # bytes flipped inside tensor data load; the output is finite or refused, never silent NaN
    opts = GenerationOptions(max_frames=3, eos_threshold=1e9, on_no_eos="ignore", seed=0)
    try:
        audio = tts.synthesize("Hi.", str(fixture_path("tiny_voice.safetensors")), opts)
    except VoxletError as e:
        one_line(e)
        return
    assert np.isfinite(audio).all()


@given(mutation=_MUTATION)
def test_a_corrupt_voice_file_is_refused_or_loads(tiny_tts, tmp_path_factory, mutation):
    path = write(tmp_path_factory.mktemp("voice"), "v.safetensors", corrupt(_VOICE, mutation))
    try:
        tiny_tts.voice(str(path))
    except VoiceError as e:
        one_line(e)


@given(mutation=_MUTATION)
def test_a_corrupt_audio_prompt_is_refused_or_clones(tmp_path_factory, mutation):
    tts = _cloning_tts()
    path = write(tmp_path_factory.mktemp("prompt"), "p.wav", corrupt(_PROMPT, mutation))
    try:
        voice = tts.voice(str(path))
    except (VoiceError, ValueError, OSError) as e:
        one_line(e)
        return
    assert all(bool(np.isfinite(k.numpy()).all()) for k in voice.state.keys)


_CLONER: list[TTS] = []


def _cloning_tts() -> TTS:
    from tests.conftest import load_tiny

    if not _CLONER:
        _CLONER.append(load_tiny(encoder=True))
    return _CLONER[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e30])
def test_the_resampler_refuses_wild_samples(value):
    from voxlet.audio import AudioError, resample

    x = np.zeros(4800, np.float32)
    x[7] = value
    with pytest.raises(AudioError, match="sample 7 is"):
        resample(x, 24000, 16000)
