"""Text that arrives while speaking: first audio after the first sentence's last fragment,
against the first audio of that sentence given whole, and whether speech keeps up.

A generator yields the text word by word, one word every --word-ms (an LLM writing about
30 words a second by default). Reported: first audio measured from the moment the fragment that
completes the first sentence is handed over, minus the first audio of the same sentence given
as one str (target: <= 10 ms); then, played back in real time from the first frame with a
200 ms prebuffer, how many frames would have arrived late (underruns; target 0 when the text
comes at least as fast as it is spoken). Medians of --runs runs. JSON lines.

    .venv/bin/python benches/bench_text_feed.py --config runs/voxlet-2m/config.yaml
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voxlet import TTS, GenerationOptions
from voxlet.runtime import StreamOptions

FIRST = "Hello there, this is the first sentence."
REST = (
    " It is followed by a second one, a little longer than the first. Then comes a third,"
    " and a fourth that ends the answer."
)
PREBUFFER_S = 0.2


def emit(**row) -> None:
    print(json.dumps({"bench": "text_feed", **row}), flush=True)


def first_audio_whole(tts: TTS, voice, opts, options) -> float:
    start = time.perf_counter()
    stream = tts.open_stream(FIRST, voice, opts, options)
    with stream:
        next(stream.frames())
        return 1000 * (time.perf_counter() - start)


def fed_run(tts: TTS, voice, opts, options, word_s: float) -> tuple[float, int]:
    words = (FIRST + REST).split(" ")
    n_first = len(FIRST.split(" "))
    completed_at: list[float] = []

    def fragments():
        for i, w in enumerate(words):
            if i:
                time.sleep(word_s)
            yield (" " if i else "") + w
            if i == n_first - 1:
                completed_at.append(time.perf_counter())

    stream = tts.open_stream(fragments(), voice, opts, options)
    arrivals = []
    with stream:
        for _ in stream.frames():
            arrivals.append(time.perf_counter())
    first_ms = 1000 * (arrivals[0] - completed_at[0])
    start = arrivals[0] + PREBUFFER_S  # real-time playback of frame i begins at start + i*80ms
    late = sum(1 for i, t in enumerate(arrivals) if t > start + 0.08 * i)
    return first_ms, late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="model config (default: tiny fixture)")
    parser.add_argument("--weights")
    parser.add_argument("--tokenizer")
    parser.add_argument("--voice")
    parser.add_argument("--word-ms", type=float, default=33.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.config is None:
        fixtures = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
        args.config = fixtures / "tiny_config.yaml"
        args.weights = args.weights or fixtures / "tiny_model.safetensors"
        args.tokenizer = args.tokenizer or fixtures / "tokenizer.model"
        args.voice = args.voice or fixtures / "tiny_voice.safetensors"
    tts = TTS.load(config=args.config, weights=args.weights, tokenizer=args.tokenizer)
    voice = tts.voice(args.voice)
    opts = GenerationOptions(seed=0)
    options = StreamOptions(flowlm_threads=1, mimi_threads=1)
    for _ in range(3):  # warm-up: the first streams of a process pay for thread pools
        first_audio_whole(tts, voice, opts, options)
    whole = [first_audio_whole(tts, voice, opts, options) for _ in range(args.runs)]
    fed = [fed_run(tts, voice, opts, options, args.word_ms / 1000) for _ in range(args.runs)]
    whole_ms = statistics.median(whole)
    fed_ms = statistics.median(f for f, _ in fed)
    emit(
        model=str(args.config),
        word_ms=args.word_ms,
        first_audio_whole_ms=round(whole_ms, 1),
        first_audio_after_last_fragment_ms=round(fed_ms, 1),
        difference_ms=round(fed_ms - whole_ms, 1),
        underruns=max(late for _, late in fed),
        runs=args.runs,
    )


if __name__ == "__main__":
    main()
