"""Text preparation and chunking against the reference's 32 worked cases."""

from __future__ import annotations

import json

import pytest

from tests.conftest import fixture_path
from voxlet.errors import TextError
from voxlet.text import TextRules, load_tokenizer, prepare_text, split_into_chunks

_DATA = json.loads(fixture_path("text_prep_cases.json").read_text())
_TOKENIZER = load_tokenizer(fixture_path("tokenizer.model"))


def _rules(profile: str) -> TextRules:
    p = _DATA["profiles"][profile]
    return TextRules(
        p["replace_characters"], p["remove_semicolons"], p["pad_with_spaces_for_short_inputs"]
    )


@pytest.mark.parametrize(
    "case", _DATA["cases"], ids=[f"{c['profile']}-{c['input'][:20]!r}" for c in _DATA["cases"]]
)
def test_reference_case(case):
    rules = _rules(case["profile"])
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
