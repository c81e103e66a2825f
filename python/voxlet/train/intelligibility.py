"""Intelligibility: how many words an offline ASR (pocketsphinx, PyPI; it ships its US English
models) gets wrong in speech, against the text that was spoken. Word error rate is counted over
a whole list, (substitutions + deletions + insertions) / reference words, after both sides are
normalised the same way (lowercase, no punctuation, in-word apostrophes kept, digits as words).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxlet.audio import f32_to_i16, resample
from voxlet.text.numbers import cardinal

ASR_RATE_HZ = 16000
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """'Hello, World! It's 42.' -> ['hello', 'world', "it's", 'forty', 'two']."""
    out: list[str] = []
    for w in _WORD.findall(text.lower().replace("’", "'")):
        if w.isdigit():
            out += cardinal(int(w)).replace("-", " ").split()
        else:
            out.append(w)
    return out


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """The Levenshtein distance between two word lists (substitutions, deletions, insertions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


@dataclass
class Score:
    errors: int = 0
    words: int = 0
    sentences: int = 0

    def add(self, reference: str, hypothesis: str) -> None:
        ref = words(reference)
        self.errors += word_errors(ref, words(hypothesis))
        self.words += len(ref)
        self.sentences += 1

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float("nan")


class Transcriber:
    """pocketsphinx with its bundled US English models; each utterance starts from a clean
    feature state (`reinit_feat`), so a result never depends on what was heard before."""

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise ImportError("the ASR needs `pip install voxlet[eval]` (pocketsphinx)") from e
        self._decoder = Decoder(loglevel="FATAL")

    def __call__(self, audio: npt.NDArray[np.float32], rate_hz: int) -> str:
        pcm = f32_to_i16(resample(np.ascontiguousarray(audio, np.float32), rate_hz, ASR_RATE_HZ))
        d = self._decoder
        d.reinit_feat()
        d.start_utt()
        d.process_raw(pcm.tobytes(), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return hyp.hypstr if hyp is not None else ""
