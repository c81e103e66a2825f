"""Text preparation and chunking against the reference's worked cases: the standard profiles'
32 and the small models' 24 (their dash rule among them)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fixture_path
from voxlet.errors import TextError
from voxlet.registry import official_config, small_model_names
from voxlet.text import TextRules, load_tokenizer, prepare_text, split_into_chunks

_DATA = json.loads(fixture_path("text_prep_cases.json").read_text())
_SMALL = json.loads(fixture_path("small/text_prep_cases_small.json").read_text())
_TOKENIZER = load_tokenizer(fixture_path("tokenizer.model"))
_CASES = [(_DATA, c) for c in _DATA["cases"]] + [(_SMALL, c) for c in _SMALL["cases"]]


def _rules(data: dict, profile: str) -> TextRules:
    p = data["profiles"][profile]
    return TextRules(
        p["replace_characters"], p["remove_semicolons"], p["pad_with_spaces_for_short_inputs"]
    )


@pytest.mark.parametrize(
    "data,case", _CASES, ids=[f"{c['profile']}-{c['input'][:20]!r}" for _, c in _CASES]
)
def test_reference_case(data, case):
    rules = _rules(data, case["profile"])
    if "error" in case:
        with pytest.raises(TextError, match="Text prompt cannot be empty"):
            split_into_chunks(case["input"], _TOKENIZER, rules)
        return
    assert prepare_text(case["input"], rules) == case["whole_text_prepared"]
    chunks = split_into_chunks(case["input"], _TOKENIZER, rules, max_tokens=50)
    assert [c.raw for c in chunks] == [c["chunk"] for c in case["chunks"]]
    assert [c.text for c in chunks] == [c["prepared"] for c in case["chunks"]]
    assert [c.token_ids.tolist() for c in chunks] == [c["token_ids"] for c in case["chunks"]]
    assert [c.frames_after_eos_guess for c in chunks] == [
        c["frames_after_eos_guess"] for c in case["chunks"]
    ]


def test_boundary_ids_derived_from_tokenizer_match_reference():
    from voxlet.text.chunking import _marker_ids

    assert _marker_ids(_TOKENIZER, ".!...?") == set(_DATA["sentence_boundary_token_ids"])
    assert _marker_ids(_TOKENIZER, ",;:") == set(_DATA["subsplit_token_ids"])


def test_unpunctuated_long_text_is_split_at_words():
    text = " ".join(f"word{i}" for i in range(80))
    chunks = split_into_chunks(text, _TOKENIZER, TextRules(), max_tokens=50)
    assert len(chunks) > 1 and all(len(c.raw.split()) > 0 for c in chunks)
    assert " ".join(c.raw for c in chunks).split() == prepare_text(text, TextRules()).split()


@pytest.mark.parametrize("name", small_model_names())
def test_small_models_use_the_small_profile(name):
    """The registry's small models carry exactly the fixture's text profile."""
    cfg = official_config(name)
    profile = _SMALL["profiles"]["english_small_2026-10"]
    assert cfg.replace_characters == profile["replace_characters"]
    assert cfg.remove_semicolons == profile["remove_semicolons"]
    assert cfg.pad_with_spaces_for_short_inputs == profile["pad_with_spaces_for_short_inputs"]
    assert f"{name}_2026-10" in _SMALL["profile_applies_to"]
