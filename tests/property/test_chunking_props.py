"""Chunking never loses or reorders words, and respects the token budget."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import fixture_path
from voxlet.text import TextRules, load_tokenizer, prepare_text, split_into_chunks

_TOKENIZER = load_tokenizer(fixture_path("tokenizer.model"))
_WORDS = st.sampled_from(
    "the a cat sat on mat while dogs barked loudly 3.50 2026 naïve über Hello world".split()
)
_PUNCT = st.sampled_from(["", "", "", ",", ";", ":", ".", "!", "?", "...", "…"])
_TEXT = st.lists(st.tuples(_WORDS, _PUNCT), min_size=1, max_size=120).map(
    lambda items: " ".join(w + p for w, p in items)
)


@settings(max_examples=150, deadline=None)
@given(text=_TEXT, max_tokens=st.integers(min_value=8, max_value=60))
def test_words_kept_in_order_and_chunks_within_budget(text, max_tokens):
    rules = TextRules()
    chunks = split_into_chunks(text, _TOKENIZER, rules, max_tokens=max_tokens)
    assert chunks and all(c.text.strip() for c in chunks)
    assert " ".join(c.raw for c in chunks).split() == prepare_text(text, rules).split()
    for c in chunks:
        # Every word here is far shorter than the budget, so no chunk may exceed it.
        assert len(_TOKENIZER.encode(c.raw)) <= max_tokens
