"""Unbounded work from one input (issue 13, class 2), and text inputs that cannot be read:
a word of any length is cut at the chunk budget, text from a file or stdin is capped, and
every such problem is a one-line error naming the input, before any model work."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import fixture_path
from tests.hostile.test_output_files import one_line_error
from tests.integration.cli_helpers import MODEL, run_voxlet
from voxlet.constants import MAX_TEXT_BYTES
from voxlet.text import TextRules, load_tokenizer, split_into_chunks

TOKENIZER = load_tokenizer(fixture_path("tokenizer.model"))


@pytest.mark.parametrize("letters", [200, 5_000, 100_000])
def test_a_word_of_any_length_is_cut_at_the_chunk_budget(letters):
    text = "Start " + "a" * letters + " end."
    chunks = split_into_chunks(text, TOKENIZER, TextRules(), max_tokens=50)
    # each chunk's own tokens within the budget, give or take the re-prepared ending
    assert max(len(c.token_ids) for c in chunks) <= 50 + 3
    assert "".join(c.raw for c in chunks).count("a") >= letters  # nothing lost


def test_a_long_word_speaks_in_bounded_chunks(tiny_tts):
    from voxlet import GenerationOptions

    opts = GenerationOptions(temperature=0.0, max_frames=2, on_no_eos="ignore")
    plans = tiny_tts.plans("x" * 20_000, opts)
    assert len(plans) > 10 and max(len(p.token_ids) for p in plans) <= 53
    audio = tiny_tts.synthesize("x" * 2_000, str(fixture_path("tiny_voice.safetensors")), opts)
    assert np.isfinite(audio).all() and audio.size > 0


def test_text_past_the_cap_is_refused_from_a_file_and_from_stdin(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (MAX_TEXT_BYTES + 1))
    out = tmp_path / "out.wav"
    one_line_error(run_voxlet("say", "-f", str(big), *MODEL, "-o", str(out)), b"more than")
    done = run_voxlet("say", *MODEL, "-o", str(out), stdin=b"a" * (MAX_TEXT_BYTES + 1))
    one_line_error(done, b"stdin: more than")
    assert not out.exists()


def test_text_that_is_not_utf8_names_the_input(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    one_line_error(
        run_voxlet("say", "-f", str(bad), *MODEL, "-o", str(tmp_path / "o.wav")),
        b"not UTF-8 text (byte 3)",
    )


def test_text_and_a_file_together_are_refused(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("From the file.")
    done = run_voxlet("say", "Also text.", "-f", str(f), *MODEL, "-o", str(tmp_path / "o.wav"))
    one_line_error(done, b"give TEXT or -f FILE, not both")
