"""Word timings: mean absolute boundary error (word starts and ends, ms) against an ASR forced
alignment (pocketsphinx), on a corpus's held-out sentences.

Two measurements:
- `--data` alone: the within-chunk rule on natural speech. The teacher's audio of each sentence
  is one chunk whose speech runs from the audio's start to its last loud frame (what the
  runtime knows from the chunk's first frame and its end-of-speech frame); voxlet places the
  written words in it (`voxlet.text.words`: letters and punctuation pauses) and a peer,
  `uniform`, gives every word the same share. Both are scored against the alignment.
- `--config` too: a voxlet model reads each sentence with `word_timings=True`; its timings are
  scored against the alignment of its own audio (the issue's goal: <= 80 ms).

Sentences with a word the ASR's dictionary lacks, or that it cannot align, are counted and left
out. JSON lines on stdout.

    .venv/bin/python benches/bench_word_timings.py --data runs/data/joe
    .venv/bin/python benches/bench_word_timings.py --data runs/data/joe \
        --config runs/voxlet-2m/config.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
import numpy as np

from voxlet.audio import f32_to_i16, resample
from voxlet.constants import SAMPLE_RATE_HZ
from voxlet.text.normalize import normalize_aligned
from voxlet.text.words import mark_words
from voxlet.train.dataset import Corpus
from voxlet.train.intelligibility import ASR_RATE_HZ, words

_FRAME_S = 0.01  # pocketsphinx frames


def emit(**row) -> None:
    print(json.dumps({"bench": "word_timings", **row}), flush=True)


class Aligner:
    """pocketsphinx forced alignment of known words -> [(start_s, end_s)] per word, or None."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(loglevel="FATAL")

    def __call__(self, audio: np.ndarray, said: list[str]) -> list[tuple[float, float]] | None:
        d = self._decoder
        if any(d.lookup_word(w) is None for w in said):
            return None
        pcm = f32_to_i16(
            resample(np.ascontiguousarray(audio, np.float32), SAMPLE_RATE_HZ, ASR_RATE_HZ)
        )
        try:
            d.set_align_text(" ".join(said))
            d.reinit_feat()
            d.start_utt()
            d.process_raw(pcm.tobytes(), full_utt=True)
            d.end_utt()
            segments = [s for s in d.seg() or [] if not s.word.startswith(("<", "("))]
        except RuntimeError:
            return None
        if len(segments) != len(said):
            return None
        return [(s.start_frame * _FRAME_S, (s.end_frame + 1) * _FRAME_S) for s in segments]


def speech_end_s(audio: np.ndarray, floor_db: float = -40.0) -> float:
    """End of the last 10 ms frame within floor_db of the loudest (the end of speech)."""
    hop = SAMPLE_RATE_HZ // 100
    n = len(audio) // hop
    if n == 0:
        return len(audio) / SAMPLE_RATE_HZ
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > floor_db)[0]
    return (loud[-1] + 1) * hop / SAMPLE_RATE_HZ if len(loud) else n * hop / SAMPLE_RATE_HZ


def asr_words(written: str) -> list[list[str]]:
    """What the ASR hears of each written word (normalised, its own spelling of numbers)."""
    return [words(normalize_aligned(w)[0]) for w in written.split()]


def collapse(
    per_written: list[list[str]], aligned: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The aligned spans of the ASR words grouped back into written words."""
    out, k = [], 0
    for group in per_written:
        spans = aligned[k : k + len(group)]
        k += len(group)
        out.append((spans[0][0], spans[-1][1]) if spans else (np.nan, np.nan))
    return out


class Errors:
    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, guess: list[tuple[float, float]], truth: list[tuple[float, float]]) -> None:
        for (gs, ge), (ts, te) in zip(guess, truth, strict=True):
            if not np.isnan(ts):
                self.values += [abs(gs - ts), abs(ge - te)]

    def row(self) -> dict:
        v = np.asarray(self.values) * 1000
        return {
            "boundaries": len(v),
            "mean_abs_ms": round(float(v.mean()), 1),
            "median_ms": round(float(np.median(v)), 1),
            "within_80ms": round(float((v <= 80).mean()), 3),
        }


def layout_guess(text: str, end_s: float) -> list[tuple[float, float]]:
    said, rewrites = normalize_aligned(text)
    [marks] = mark_words(text, said, rewrites, [said])
    return [(float(m.start) * end_s, float(m.end) * end_s) for m in marks]  # type: ignore[arg-type]


def uniform_guess(text: str, end_s: float) -> list[tuple[float, float]]:
    n = len(text.split())
    return [(i * end_s / n, (i + 1) * end_s / n) for i in range(n)]


def marking_cost(texts: list[str]) -> dict:
    """What word timings add to planning a sentence: `mark_words`, median over the sentences
    (normalisation, which runs either way, left out)."""
    spent = []
    for text in texts:
        said, rewrites = normalize_aligned(text)
        start = time.perf_counter()
        mark_words(text, said, rewrites, [said])
        spent.append(time.perf_counter() - start)
    return {
        "mark_words_us_median": round(float(np.median(spent)) * 1e6, 1),
        "sentences": len(texts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="corpus folder")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--config", type=Path, help="a voxlet model config: score its timings")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--tokenizer", type=Path)
    parser.add_argument("--voice", help="voice for --config (default: the model's)")
    args = parser.parse_args()
    corpus = Corpus(args.data)
    items = corpus.split("test")[: args.sentences]
    align = Aligner()
    systems = {"voxlet-layout": Errors(), "uniform": Errors()}
    skipped = 0
    start = time.perf_counter()
    for u in items:
        audio = corpus.audio(u)
        per_written = asr_words(u.text)
        aligned = align(audio, [w for g in per_written for w in g])
        if aligned is None:
            skipped += 1
            continue
        truth = collapse(per_written, aligned)
        end = speech_end_s(audio)
        systems["voxlet-layout"].add(layout_guess(u.text, end), truth)
        systems["uniform"].add(uniform_guess(u.text, end), truth)
    emit(kind="cost", **marking_cost([u.text for u in items]))
    emit(
        kind="setup",
        data=str(args.data),
        sentences=len(items),
        skipped=skipped,
        seconds=round(time.perf_counter() - start, 1),
    )
    for name, e in systems.items():
        emit(system=name, audio="teacher", **e.row())
    ratio = systems["voxlet-layout"].row()["mean_abs_ms"] / systems["uniform"].row()["mean_abs_ms"]
    emit(kind="ratio", system="voxlet-layout", vs="uniform", mean_abs=round(ratio, 3))
    if args.config is not None:
        from voxlet import TTS

        tts = TTS.load(config=args.config, weights=args.weights, tokenizer=args.tokenizer)
        voice = tts.voice(args.voice)
        model, skipped = Errors(), 0
        for u in items:
            audio, timed = tts.synthesize(u.text, voice, word_timings=True)
            per_written = asr_words(u.text)
            aligned = align(audio, [w for g in per_written for w in g])
            if aligned is None:
                skipped += 1
                continue
            model.add([(t.start_s, t.end_s) for t in timed], collapse(per_written, aligned))
        emit(
            system="voxlet-model",
            audio="model",
            config=str(args.config),
            skipped=skipped,
            **model.row(),
        )


if __name__ == "__main__":
    main()
