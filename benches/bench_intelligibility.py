"""Intelligibility: word error rate of an offline ASR (pocketsphinx) on held-out sentences, for
the teacher's own audio, a codec round trip of it, and a voxlet model reading the text.

The sentences are a corpus's test split (never trained or tuned on; see voxlet.train.corpus),
the first --sentences of them. WER is counted over the whole list; compare systems against the
teacher on the same sentences, never against 0 (the ASR's floor on clean speech is ~0.3).

    .venv/bin/python benches/bench_intelligibility.py --data runs/data/joe --codec runs/codec-2m
    .venv/bin/python benches/bench_intelligibility.py --data runs/data/joe \
        --config voice.yaml --weights voice.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
import torch

from voxlet.constants import SAMPLE_RATE_HZ
from voxlet.train.dataset import Corpus
from voxlet.train.intelligibility import Score, Transcriber


def emit(**row) -> None:
    print(json.dumps({"bench": "intelligibility", **row}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="corpus folder")
    parser.add_argument("--sentences", type=int, default=300, help="how many test sentences")
    parser.add_argument("--codec", type=Path, help="a codec run folder: score its round trip")
    parser.add_argument("--config", type=Path, help="a voxlet model config: score its speech")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--tokenizer", type=Path)
    parser.add_argument("--voice", help="voice for --config (default: the model's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--show", type=int, default=0, help="print this many transcripts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = Corpus(args.data)
    items = corpus.split("test")[: args.sentences]
    asr = Transcriber()
    audio_s = sum(u.seconds for u in items)
    systems: dict[str, Score] = {}

    def score(name: str, speak, timed: bool = True, **extra) -> None:
        result, spent, produced = Score(), 0.0, 0.0
        for i, u in enumerate(items):
            start = time.perf_counter()
            audio = speak(u)
            spent += time.perf_counter() - start
            produced += len(audio) / SAMPLE_RATE_HZ
            heard = asr(audio, SAMPLE_RATE_HZ)
            result.add(u.text, heard)
            if i < args.show:
                print(f"{name}: {u.text} | {heard}", file=sys.stderr)
        systems[name] = result
        speed = round(produced / spent, 1) if timed and spent > 0 else None
        emit(
            system=name,
            sentences=result.sentences,
            words=result.words,
            wer=round(result.wer, 4),
            x_real_time=speed,
            audio_s=round(produced, 1),
            **extra,
        )

    emit(kind="setup", data=str(args.data), sentences=len(items), teacher_audio_s=round(audio_s))
    score("teacher", corpus.audio, timed=False)  # its audio is read, not made, here
    if args.codec is not None:
        from voxlet.train.codec import load_run, round_trip

        model, step = load_run(args.codec)
        score("codec", lambda u: round_trip(model, corpus.audio(u)), run=str(args.codec), step=step)
    if args.config is not None:
        from voxlet import TTS

        tts = TTS.load(config=args.config, weights=args.weights, tokenizer=args.tokenizer)
        voice = tts.voice(args.voice)
        score("voxlet", lambda u: tts.synthesize(u.text, voice), config=str(args.config))
    teacher = systems["teacher"].wer
    for name, s in systems.items():
        if name != "teacher":
            emit(kind="ratio", system=name, wer_vs_teacher=round(s.wer / teacher, 3))


if __name__ == "__main__":
    main()
