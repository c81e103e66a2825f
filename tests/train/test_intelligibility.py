"""Word error rate: normalisation, edit distance, and the ASR hearing the teacher but not noise."""

from __future__ import annotations

import numpy as np
import pytest

from voxlet.train.intelligibility import Score, Transcriber, word_errors, words


def test_words_are_normalised_the_same_way_on_both_sides():
    assert words("Hello, World! It's 42.") == ["hello", "world", "it's", "forty", "two"]
    assert words("don’t STOP—now") == ["don't", "stop", "now"]


def test_word_errors_count_substitutions_deletions_and_insertions():
    ref = "the cat sat on the mat".split()
    assert word_errors(ref, ref) == 0
    assert word_errors(ref, "the cat sat on a mat".split()) == 1
    assert word_errors(ref, "the cat on the mat".split()) == 1
    assert word_errors(ref, "the cat sat down on the mat".split()) == 1
    assert word_errors(ref, []) == 6
    assert word_errors([], ["extra"]) == 1


def test_score_is_corpus_level():
    s = Score()
    s.add("one two three four", "one two three four")
    s.add("five six", "five")
    assert (s.errors, s.words, s.sentences) == (1, 6, 2)
    assert s.wer == pytest.approx(1 / 6)


@pytest.fixture(scope="module")
def asr() -> Transcriber:
    return Transcriber()


def test_the_asr_hears_the_teacher_and_not_noise(asr):
    from voxlet.train.teacher import PiperTeacher

    text = "Please call me back in the morning."
    speech = PiperTeacher().speak(text)
    heard = Score()
    heard.add(text, asr(speech, 24000))
    assert heard.wer <= 0.3
    noise = Score()
    rng = np.random.default_rng(0)
    noise.add(text, asr((0.1 * rng.standard_normal(len(speech))).astype(np.float32), 24000))
    assert noise.wer >= 0.8
    assert asr(speech, 24000) == asr(speech, 24000)  # no state carried between utterances
