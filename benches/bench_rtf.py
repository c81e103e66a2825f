"""End-to-end speed and memory of voxlet on full-size random weights in the official layout.

Each configuration runs in a fresh process (so peak RSS and cold start are honest) and prints one
JSON line: first audio for an 8-word sentence and a 61-word paragraph (voice ready, 40-frame
prefix), x real time over 10 s of audio (EOS disabled), FlowLM ms per step and Mimi ms per frame
(medians), the largest gap between frames on multi-chunk text relative to 80 ms and how late a
real-time sink started at the first frame would get (<= 0: never starves), peak RSS, and cold
start (new process -> first audio, weights in the page cache). Medians of --runs runs (first
audio: 3 samples per run). The default backend, torch-free, never imports torch, so
`peak_rss_mb` is the whole process's; `--backend native` (or torch) adds the RSS above a process
that has only imported torch.

    .venv/bin/python benches/bench_rtf.py   # writes bench-out/english-random.safetensors once
    .venv/bin/python benches/bench_rtf.py --runs 1 --quick
    .venv/bin/python benches/bench_rtf.py --model english_2m   # a small layout (english_7m, _18m)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VOXLET_SHARED", ROOT.parent / "shared"))
TOKENIZER = SHARED / "fixtures" / "tokenizer.model"
SHORT = "Hello there, this is a short test sentence."  # 8 words
PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog near the riverbank on a sunny afternoon. "
    "Meanwhile, a group of children played football in the park, laughing and shouting with "
    "joy. Their parents watched from the benches, chatting about work, school, and the "
    "upcoming holidays. Eventually the sun set and everyone went home, tired but happy after "
    "such a long and pleasant day outside together."
)  # 61 words


FIRST_AUDIO_REPEATS = 3


def rss_mb() -> float:
    """Current resident set size (VmRSS) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRss:
    """Peak resident set size from now until `stop()`, in MB.

    The kernel keeps the peak itself (VmHWM); writing 5 to /proc/self/clear_refs resets it to
    the current RSS, so load-time spikes are excluded and nothing runs while the engine streams.
    (A sampling thread, the fallback where clear_refs cannot be written, competes with the
    engine's two threads for the GIL every few ms and slows what it measures.)
    """

    def __init__(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._sampler = None
        except OSError:
            self._sampler = _RssSamplingThread()

    def stop(self) -> float:
        if self._sampler is not None:
            return self._sampler.stop()
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("VmHWM missing from /proc/self/status")


class _RssSamplingThread:
    """Samples VmRSS every few ms on a thread; `stop()` returns the largest value seen."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def worker(args: argparse.Namespace) -> dict:
    t_process = float(args.started)
    # isort: off
    import voxlet

    voxlet.tune_process()  # before torch, as the CLI: OpenMP's wait policy
    from voxlet import TTS, GenerationOptions
    import numpy as np

    # isort: on

    from voxlet.registry import official_config
    from voxlet.runtime import StreamOptions

    tts = TTS.load(
        config=official_config(args.model),
        weights=args.weights,
        tokenizer=TOKENIZER,
        precision=args.precision,
        backend=args.backend,
    )
    d_model = tts.config.flow_lm.transformer.d_model
    prefix = (np.random.default_rng(0).standard_normal((40, d_model)) * 0.1).astype(np.float32)
    if tts.network is None:  # the torch-free model: never imports torch
        voice = tts.voice(tts.model.voice_from_conditioning(prefix))
    else:
        import torch

        from voxlet.model.voice import voice_from_conditioning

        torch.set_num_threads(1)
        with torch.no_grad():
            flow_lm = tts.network.flow_lm
            voice = tts.voice(voice_from_conditioning(flow_lm, torch.from_numpy(prefix)[None]))
    threads = StreamOptions(
        flowlm_threads=args.threads,
        mimi_threads=args.threads,
        max_frames_per_decode=args.frames_per_decode,
        first_frame_threads=args.first_frame_threads or None,
    )
    no_eos = GenerationOptions(temperature=0.3, eos_threshold=1e9, seed=1, on_no_eos="ignore")

    first_frame_wall: list[float] = []

    def first_audio_ms(text: str) -> float:
        t0 = time.perf_counter()
        stream = tts.open_stream(text, voice, no_eos.replace(max_frames=20), threads)
        frames = stream.frames()  # held: dropping the generator closes (joins) the stream
        next(frames)
        ms = 1000 * (time.perf_counter() - t0)
        first_frame_wall.append(time.time())
        stream.stop()
        return ms

    first_audio_ms(SHORT)  # the process's first audio: cold start ends here
    cold_ms = 1000 * (first_frame_wall[0] - t_process)
    peak = PeakRss()  # peak RSS while streaming (load-time spikes excluded)
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "first_audio_short_ms",
            "first_audio_paragraph_ms",
            "x_real_time",
            "flowlm_step_ms",
            "mimi_frame_ms",
            "max_gap_over_frame",
            "realtime_sink_max_late_ms",
        )
    }
    for _ in range(args.runs):
        for _ in range(FIRST_AUDIO_REPEATS):  # short and noisy on a shared VM: more samples
            results["first_audio_short_ms"].append(first_audio_ms(SHORT))
            results["first_audio_paragraph_ms"].append(first_audio_ms(PARAGRAPH))
        t0 = time.perf_counter()
        stream = tts.open_stream(SHORT, voice, no_eos.replace(max_frames=125), threads)
        n = sum(len(f) for f in stream.frames())
        wall = time.perf_counter() - t0
        results["x_real_time"].append(n / 24000 / wall)
        results["flowlm_step_ms"].append(1000 * statistics.median(stream.stats.flowlm_step_s))
        results["mimi_frame_ms"].append(1000 * statistics.median(stream.stats.mimi_frame_s))
        if not args.quick:
            arrivals: list[float] = []
            stream = tts.open_stream(
                PARAGRAPH,
                voice,
                GenerationOptions(temperature=0.3, seed=1, max_frames=30, on_no_eos="ignore"),
                threads,
            )
            for _frame in stream.frames():
                arrivals.append(time.perf_counter())
            gaps = np.diff(arrivals) if len(arrivals) > 1 else np.zeros(1)
            results["max_gap_over_frame"].append(float(gaps.max()) / 0.080)
            # A real-time sink starting at the first frame plays frame i at t0 + i * 80 ms;
            # positive lateness means it would have starved.
            due = arrivals[0] + 0.080 * np.arange(len(arrivals))
            late = np.asarray(arrivals) - due
            results["realtime_sink_max_late_ms"].append(1000 * float(late.max()))
    out: dict[str, object] = {
        "model": args.model,
        "precision": args.precision,
        "backend": args.backend,
        "torch_imported": "torch" in sys.modules,
        "threads_per_worker": args.threads,
        "frames_per_decode": args.frames_per_decode,
        "first_frame_threads": args.first_frame_threads or None,  # None: the library default
        "runs": args.runs,
        "cold_start_first_audio_ms": round(cold_ms, 1),
    }
    for key, values in results.items():
        if values:
            out[key] = round(statistics.median(values), 3 if "gap" in key or "x_" in key else 1)
    out["peak_rss_mb"] = round(peak.stop(), 1)
    return out


def random_weights(model: str) -> Path:
    """bench-out/MODEL-random.safetensors: a random checkpoint in the model's layout, written
    once."""
    path = ROOT / "bench-out" / f"{model}-random.safetensors"
    if not path.is_file():
        sys.path.insert(0, str(ROOT))
        from benches.make_checkpoint import write_checkpoint

        path.parent.mkdir(parents=True, exist_ok=True)
        write_checkpoint(path, model)
    return path


def torch_baseline_mb() -> float:
    """VmRSS of a process that has only imported torch."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import torch; "
        "from benches.bench_rtf import rss_mb; print(rss_mb())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="english", help="an official layout (random weights)")
    parser.add_argument("--weights", type=Path, help="default: bench-out/MODEL-random.safetensors")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--backend", default="torch-free", help="torch-free, native or torch")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="compute threads per worker thread")
    parser.add_argument(
        "--frames-per-decode", type=int, default=4, help="largest Mimi decode group"
    )
    parser.add_argument(
        "--first-frame-threads", type=int, default=0, help="0: the library default (both)"
    )
    parser.add_argument("--quick", action="store_true", help="skip the long-text gap measurement")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--started", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    args.weights = args.weights or random_weights(args.model)
    subprocess.run(["cat", str(args.weights)], stdout=subprocess.DEVNULL, check=True)  # page cache
    baseline = torch_baseline_mb()
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--model",
        args.model,
        "--weights",
        str(args.weights),
        "--precision",
        args.precision,
        "--backend",
        args.backend,
        "--runs",
        str(args.runs),
        "--threads",
        str(args.threads),
        "--frames-per-decode",
        str(args.frames_per_decode),
        "--first-frame-threads",
        str(args.first_frame_threads),
        "--started",
        str(time.time()),
    ] + (["--quick"] if args.quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(done.returncode)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["torch_imported"]:  # else peak_rss_mb is the whole process, torch-free
        result["torch_import_rss_mb"] = round(baseline, 1)
        result["rss_above_torch_mb"] = round(result["peak_rss_mb"] - baseline, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
