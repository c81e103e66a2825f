"""The training text: cleaning, splits by text, deduplication, spelled-out numbers, WordNet."""

# ruff: noqa: E501 (WordNet's data lines are long)

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voxlet.text.numbers import cardinal, ordinal, year
from voxlet.train import corpus
from voxlet.train.corpus import Sentence

# Lines in WordNet 3.0's data-file format (offset, lexfile, pos, words, pointers | gloss).
_DATA = """\
  1 This software and database is being provided to you, the LICENSEE, by Princeton
00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived to exist; "the dog barked at the stranger"; "she never goes on blind dates"
00002137 03 n 02 abstraction 0 abstract_entity 0 010 | a general concept formed by extracting common features from examples; "created in 1966"
00002452 03 n 01 thing 0 000 | a separate and self-contained entity that has a will of its own
00002684 03 n 01 object 0 000 | (physics) a tangible and visible entity; "a (bad) example"
"""
_INDEX = """\
  1 This software and database is being provided to you
dog n 7 4 @ ~ #m %p 7 3 02084071 10114209 10023039 09886220 07676602 03907626 02712903
zebrafish n 1 1 @ 1 0 01445429
ox n 1 1 @ 1 1 02403454
"""


@pytest.fixture
def wordnet_dir(tmp_path: Path) -> Path:
    (tmp_path / "data.noun").write_text(_DATA, encoding="latin-1")
    for pos in ("verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text("", encoding="latin-1")
    (tmp_path / "index.noun").write_text(_INDEX, encoding="latin-1")
    return tmp_path


def test_clean_capitalises_ends_and_refuses_digits_symbols_and_lengths():
    assert corpus.clean("  the dog   barked ") == "The dog barked."
    assert corpus.clean("is it raining?") == "Is it raining?"
    assert corpus.clean("we left early;") == "We left early."
    assert corpus.clean("created in 1966 by them") is None
    assert corpus.clean("a (bad) example here") is None
    assert corpus.clean("two words") is None
    assert corpus.clean(" ".join(["word"] * 41)) is None


def test_split_depends_on_the_text_alone_and_holds_out_about_three_percent():
    a = Sentence("The dog barked at the stranger.", "x")
    assert a.split == Sentence("the dog barked, at the stranger!", "y").split
    splits = [Sentence(f"Sentence number {cardinal(i)} here.", "t").split for i in range(4000)]
    assert 0.01 < splits.count("test") / 4000 < 0.03
    assert 0.003 < splits.count("val") / 4000 < 0.02


def test_deduplicate_keeps_the_first_of_each_text():
    s = [Sentence("The cat sat.", "a"), Sentence("the cat, sat!", "b"), Sentence("A dog.", "c")]
    assert [x.source for x in corpus.deduplicate(s)] == ["a", "c"]


def test_numbers_read_as_words():
    assert cardinal(0) == "zero"
    assert cardinal(115) == "one hundred fifteen"
    assert cardinal(2_000_021) == "two million twenty-one"
    assert cardinal(-40) == "minus forty"
    assert (
        ordinal(1) == "first" and ordinal(22) == "twenty-second" and ordinal(100) == "one hundredth"
    )
    assert ordinal(12) == "twelfth" and ordinal(30) == "thirtieth"
    assert year(1984) == "nineteen eighty-four" and year(1905) == "nineteen oh five"
    assert year(2007) == "two thousand seven" and year(2024) == "twenty twenty-four"
    with pytest.raises(ValueError, match="beyond"):
        cardinal(10**15)


def test_wordnet_examples_and_glosses(wordnet_dir):
    got = list(corpus.wordnet(wordnet_dir))
    texts = {s.text: s.source for s in got}
    assert texts["The dog barked at the stranger."] == "wordnet-example"
    assert texts["She never goes on blind dates."] == "wordnet-example"
    assert texts["A separate and self-contained entity that has a will of its own."] == (
        "wordnet-gloss"
    )
    assert not any(re.search(r"[0-9()]", t) for t in texts)  # 1966 and (physics) dropped
    assert corpus.common_nouns(wordnet_dir) == ["dog"]  # only nouns seen in the tagged corpus


def test_missing_wordnet_says_what_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        list(corpus.wordnet(tmp_path))


def test_build_mixes_sources_spells_numbers_and_is_reproducible(wordnet_dir, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("An extra line of text.\n\nthe dog barked at the stranger\n", "utf-8")
    a = corpus.build(0.05, seed=3, wordnet_dir=wordnet_dir, files=[extra])
    assert a == corpus.build(0.05, seed=3, wordnet_dir=wordnet_dir, files=[extra])
    sources = {s.source for s in a}
    assert {"wordnet-example", "template", "file:extra.txt"} <= sources
    assert len({s.key for s in a}) == len(a)  # the file's duplicate of an example is gone
    templated = [s.text for s in a if s.source == "template"]
    assert templated and not any(re.search(r"[0-9]", t) for t in templated)
