"""Many streams through `voxlet serve`: N clients over loopback at once, each streaming one
request of a 25-word sentence as PCM; per stream, first audio and whether a listener who
started playing 200 ms after its first audio would have run dry (an underrun); aggregate x real
time.

The server runs in its own process (`voxlet serve`, random weights in an official layout, its
reference config with the end-of-speech rule off, so every stream runs to its length limit,
~13 s of audio); the clients are threads here, reading as fast as the audio comes. N runs 1, 2,
4, 6, 8, 12, ... up to --max-n, or until more than half the streams underrun. One JSON line per
N.

    .venv/bin/python benches/bench_serve.py --precision int8
    .venv/bin/python benches/bench_serve.py --model english_2m --max-n 64
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("VOXLET_SHARED", ROOT.parent / "shared"))
TOKENIZER = SHARED / "fixtures" / "tokenizer.model"
TEXT = (
    "The quick brown fox jumps over the lazy dog near the riverbank on a sunny afternoon, "
    "while a group of children played football in the park."
)
PREBUFFER_S = 0.2
STREAMS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64)
BYTES_PER_S = 24_000 * 2


def emit(**row) -> None:
    print(json.dumps({"bench": "serve", **row}), flush=True)


def make_voice(model: str, weights: Path, out: Path) -> None:
    """A random 40-frame voice prefix for the random model, written once."""
    if out.is_file():
        return
    code = f"""
import sys, torch
sys.path.insert(0, {str(ROOT)!r})
from voxlet import TTS
from voxlet.model.voice import voice_from_conditioning
from voxlet.registry import official_config
tts = TTS.load(config=official_config({model!r}), weights={str(weights)!r},
               tokenizer={str(TOKENIZER)!r}, backend="native")
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    prefix = torch.randn(1, 40, tts.network.flow_lm.d_model, generator=g) * 0.1
    tts.save_voice(tts.voice(voice_from_conditioning(tts.network.flow_lm, prefix)), {str(out)!r})
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code], check=True)


def eos_off_config(model: str) -> Path:
    """The model's reference config with the end-of-speech threshold out of reach."""
    source = SHARED / "spec" / "reference-configs" / f"{official_name(model)}.yaml"
    lines = [
        line
        for line in source.read_text().splitlines()
        if not line.startswith("default_eos_threshold:")
    ]
    out = ROOT / "bench-out" / f"{model}-eos-off.yaml"
    out.write_text("\n".join([*lines, "default_eos_threshold: 1000000000.0", ""]))
    return out


def official_name(model: str) -> str:
    from voxlet.registry import canonical_name

    return canonical_name(model)


class Server:
    def __init__(self, args: argparse.Namespace, weights: Path, voices: Path):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voxlet",
                "serve",
                "--port",
                "0",
                "--no-warm-up",  # the access log stays on: "running on" is how the port is read
                "--config",
                str(eos_off_config(args.model)),
                "--weights",
                str(weights),
                "--tokenizer",
                str(TOKENIZER),
                "--precision",
                args.precision,
                "--voices",
                str(voices),
                "--max-sessions",
                str(args.max_n),
                "--max-waiting",
                "0",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.url = None
        while self.url is None:
            line = self.proc.stderr.readline()
            if not line:
                raise SystemExit("the server exited: " + self.proc.stderr.read())
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            self.url = found.group(1) if found else None
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def one_stream(url: str, out: dict, client: httpx.Client) -> None:
    """One request, timed from when it is sent: `client` is made beforehand (as a real
    client's connection pool is), so making one (an SSL context, ~20 ms of Python each,
    contending for the GIL with the other client threads) is not counted as the server's."""
    body = {"input": TEXT, "voice": "random", "response_format": "pcm"}
    start = time.monotonic()
    first = None
    got = 0
    worst_lag = 0.0
    with client.stream("POST", url + "/v1/audio/speech", json=body) as r:
        if r.status_code != 200:
            out["error"] = f"{r.status_code}: {r.read()[:200]!r}"
            return
        for chunk in r.iter_bytes():
            now = time.monotonic()
            if first is None:
                first = now
            else:  # how far past the playhead this audio came (> 0: the listener ran dry)
                worst_lag = max(worst_lag, (now - first - PREBUFFER_S) - got / BYTES_PER_S)
            got += len(chunk)
    out.update(
        first_audio_ms=1000 * (first - start) if first else None,
        audio_s=got / BYTES_PER_S,
        underrun=worst_lag > 0,
        worst_lag_ms=1000 * worst_lag,
        wall_s=time.monotonic() - start,
    )


def round_of(url: str, n: int) -> dict:
    results = [{} for _ in range(n)]
    clients = [httpx.Client(timeout=120) for _ in range(n)]
    threads = [
        threading.Thread(target=one_stream, args=(url, r, c))
        for r, c in zip(results, clients, strict=True)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    for c in clients:
        c.close()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return {"n": n, "errors": errors[:3]}
    first = sorted(r["first_audio_ms"] for r in results)
    audio = sum(r["audio_s"] for r in results)
    return {
        "n": n,
        "first_audio_p50_ms": round(statistics.median(first), 1),
        "first_audio_p95_ms": round(first[min(n - 1, round(0.95 * (n - 1)))], 1),
        "underruns": sum(r["underrun"] for r in results),
        "worst_lag_ms": round(max(r["worst_lag_ms"] for r in results), 1),
        "audio_s_per_stream": round(audio / n, 2),
        "aggregate_x_real_time": round(audio / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="english", help="an official layout (random weights)")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--max-n", type=int, default=16)
    args = parser.parse_args()
    from benches.bench_rtf import random_weights

    weights = random_weights(args.model)
    voices = ROOT / "bench-out" / f"{args.model}-voices"
    make_voice(args.model, weights, voices / "random.safetensors")
    server = Server(args, weights, voices)
    try:
        deadline = time.monotonic() + 120
        while True:  # warm: one stream through, the server's caches and pools made
            try:
                with httpx.Client(timeout=120) as client:
                    one_stream(server.url, {}, client)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        emit(kind="setup", model=args.model, precision=args.precision, text_words=len(TEXT.split()))
        for n in (k for k in STREAMS if k <= args.max_n):
            row = round_of(server.url, n)
            emit(model=args.model, precision=args.precision, **row)
            if "errors" in row or row["underruns"] > n // 2:
                break
    finally:
        server.close()


if __name__ == "__main__":
    main()
