"""voxlet.text.normalize: every case of the English test set, the alignment it reports, and
what it must never do (change plain words, crash, grow without bound, touch other languages)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxlet.errors import TextError
from voxlet.text.normalize import normalize, normalize_aligned, supports
from voxlet.text.normalize.lexicon_en import ABBREVIATIONS

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "normalize_en.tsv"


def _cases() -> list[tuple[str, str, str]]:
    rows = []
    for line in CASES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            rows.append(tuple(line.split("\t")))
    return rows


CASES = _cases()
CATEGORIES = (
    "cardinal ordinal decimal negative fraction percent range currency year date time phone unit "
    "abbreviation title initialism acronym roman url email symbol plain mixed"
).split()


def test_the_set_covers_every_category_with_several_hundred_cases():
    counts = Counter(category for category, _, _ in CASES)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 5
    assert len(CASES) >= 300


@pytest.mark.parametrize(("category", "written", "said"), CASES, ids=[c[1] for c in CASES])
def test_case(category, written, said):
    assert normalize(written) == said


@pytest.mark.parametrize(("_", "written", "said"), CASES[::7], ids=[c[1] for c in CASES[::7]])
def test_alignment_rebuilds_the_output(_, written, said):
    out, rewrites = normalize_aligned(written)
    assert out == said
    # copied text between rewrites is the input's, in order; each rewrite's output is its own
    src = dst = 0
    for r in rewrites:
        assert r.source_start >= src and r.output_start >= dst
        gap = written[src : r.source_start]
        assert out[dst : dst + len(gap)] == gap
        src, dst = r.source_end, r.output_end
    assert out[dst:].strip() == written[src:].strip()


def test_rewrites_name_the_written_form():
    out, rewrites = normalize_aligned("Pay $4.50 to Dr. Lee.")
    assert [("Pay $4.50 to Dr. Lee."[r.source_start : r.source_end]) for r in rewrites] == [
        "$4.50",
        "Dr.",
    ]
    assert [out[r.output_start : r.output_end] for r in rewrites] == [
        "four dollars and fifty cents",
        "Doctor",
    ]


@pytest.mark.parametrize("lang", ["fr", "de", "es", "it", "pt", "nl", "xx"])
def test_other_languages_pass_through(lang):
    text = "Il a payé 5 € le 14/03/1999 à 7:45."
    assert normalize(text, lang) == text
    assert not supports(lang)


@pytest.mark.parametrize("lang", ["en", "EN", "en-US", "en_GB", "english"])
def test_english_spellings(lang):
    assert supports(lang)
    assert normalize("5 cats", lang) == "five cats"


def test_bad_arguments_are_typed_errors():
    with pytest.raises(TextError, match="lang"):
        normalize("5", lang=None)  # type: ignore[arg-type]
    with pytest.raises(TextError, match="text: must be a str"):
        normalize(b"5")  # type: ignore[arg-type]


_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
# lowercase abbreviations are rewritten on purpose ("cf." -> "compare", "vs" -> "versus")
_ABBREVIATED = {a.rstrip(".") for a in ABBREVIATIONS if a.rstrip(".").isalpha()}


@given(
    st.lists(_WORDS.filter(lambda w: w not in _ABBREVIATED), min_size=1, max_size=30),
    st.sampled_from([" ", ", ", ". ", "? "]),
)
def test_plain_lowercase_words_are_left_alone(words, sep):
    text = sep.join(words)
    assert normalize(text) == text


@given(st.text(max_size=300))
def test_any_text_gives_bounded_text_deterministically(text):
    out = normalize(text)
    assert out == normalize(text)
    assert len(out) <= 60 * len(text) + 1


@given(
    st.lists(
        st.one_of(
            st.integers(-(10**13), 10**13).map(str),
            st.floats(0, 1e6, allow_nan=False).map(lambda f: f"{f:.2f}"),
            st.sampled_from(["$", "€", "%", "/", "-", ":", "kg", "Dr.", "St.", "1st", "II", "."]),
            _WORDS,
        ),
        max_size=25,
    )
)
def test_numbers_and_symbols_never_crash_and_leave_no_digits(parts):
    out = normalize(" ".join(parts))
    assert not any(c.isdigit() for c in out), out
