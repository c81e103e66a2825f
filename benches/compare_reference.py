"""voxlet beside the reference engine (pocket-tts 4.0.1), same checkpoint, voice, text, one run.

The reference runs as a black box from its own virtual environment through its public API
(`TTSModel.load_model`, `get_state_for_audio_prompt`, `generate_audio_stream`). Both engines get
the same full-size random checkpoint (official english layout), clone the same 3 s synthetic
prompt, and run with EOS disabled, so every chunk runs to its length limit. Each engine runs in a
fresh process; every stream is consumed to the end (the reference cannot cancel one). Per
engine and precision it prints one JSON line, then one line of ratios (voxlet / reference).

Set up the reference venv once (it borrows this venv's torch through a .pth file):

    python3 -m venv bench-out/ref-venv
    site() { "$1" -c "import sysconfig; print(sysconfig.get_path('purelib'))"; }
    site .venv/bin/python > "$(site bench-out/ref-venv/bin/python)/voxlet.pth"
    bench-out/ref-venv/bin/python -m pip install pocket-tts==4.0.1

    .venv/bin/python benches/compare_reference.py --runs 3
    .venv/bin/python benches/compare_reference.py --model english_2m   # a small layout (_7m, _18m)

The small layouts run from the reference's own config files (`shared/spec/reference-configs`),
their weights and tokenizer paths pointed at the local files.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
OUT = ROOT / "bench-out"
sys.path.insert(0, str(ROOT))  # bench_rtf needs only the standard library at import
from benches.bench_rtf import PARAGRAPH, SHARED, SHORT, PeakRss, random_weights  # noqa: E402


def write_prompt(path: Path, seconds: float = 3.0) -> None:
    """A deterministic 24 kHz chirp-plus-tones prompt, 16-bit mono."""
    n = int(24000 * seconds)
    samples = []
    for i in range(n):
        t = i / 24000
        x = 0.1 * math.sin(2 * math.pi * (200 * t + 700 * t * t)) + 0.1 * math.sin(
            2 * math.pi * 440 * t
        )
        samples.append(max(-32768, min(32767, round(32768 * x))))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))


def write_reference_config(path: Path, weights: Path, tokenizer: Path, model: str) -> None:
    """The model's architecture in the reference's YAML schema, pointing at local files."""
    import dataclasses

    import yaml

    from voxlet.registry import canonical_name, official_config

    if model != "english":  # a small layout: the reference's own file
        source = SHARED / "spec" / "reference-configs" / f"{canonical_name(model)}.yaml"
        data = yaml.safe_load(source.read_text())
        data["weights_path"] = str(weights)
        data.pop("weights_path_without_voice_cloning", None)
        data["flow_lm"]["lookup_table"]["tokenizer_path"] = str(tokenizer)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return

    cfg = dataclasses.asdict(official_config("english"))
    for key in (
        "name",
        "base_dir",
        "weights_path_without_voice_cloning",
        "model_recommended_frames_after_eos",
        "default_eos_threshold",
    ):
        cfg.pop(key)
    cfg["weights_path"] = str(weights)
    lookup = cfg["flow_lm"]["lookup_table"]
    lookup.update(tokenizer="sentencepiece", tokenizer_path=str(tokenizer))
    for section, drop in (
        ("flow_lm", ("z_dim", "weights_path")),
        ("mimi", ("weights_path", "decoder_seanet", "decoder_transformer")),
    ):
        for key in drop:
            cfg[section].pop(key)
    cfg["flow_lm"]["flow"].pop("type")
    for key in ("dim_feedforward", "num_kv_heads", "attn_dim"):
        cfg["flow_lm"]["transformer"].pop(key)
    cfg["flow_lm"]["lookup_table"].pop("rank")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


# ---- the protocol, run inside each engine's process ----------------------------------------


def _measure(stream_factory, runs: int) -> dict:
    """stream_factory(text) -> iterator of 1-D float arrays at 24 kHz."""
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "first_audio_short_ms",
            "first_audio_paragraph_ms",
            "x_real_time_paragraph",
            "max_gap_over_frame",
            "realtime_sink_max_late_ms",
        )
    }
    for run in range(runs + 1):  # the first run warms up and is not counted
        t0 = time.perf_counter()
        first = None
        for _ in stream_factory(SHORT):
            first = first or time.perf_counter()
        short_ms = 1000 * ((first or t0) - t0)
        arrivals, n_samples = [], 0
        t0 = time.perf_counter()
        for pcm in stream_factory(PARAGRAPH):
            arrivals.append(time.perf_counter())
            n_samples += len(pcm)
        wall = arrivals[-1] - t0
        if run == 0:
            continue
        results["first_audio_short_ms"].append(short_ms)
        results["first_audio_paragraph_ms"].append(1000 * (arrivals[0] - t0))
        results["x_real_time_paragraph"].append(n_samples / 24000 / wall)
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        results["max_gap_over_frame"].append(max(gaps) / 0.080)  # both yield 80 ms frames
        late = [a - (arrivals[0] + 0.080 * i) for i, a in enumerate(arrivals)]
        results["realtime_sink_max_late_ms"].append(1000 * max(late))
        results.setdefault("audio_s_paragraph", []).append(n_samples / 24000)
    return {k: round(statistics.median(v), 3) for k, v in results.items() if v}


def run_engine(args: argparse.Namespace) -> None:
    if args.engine == "voxlet":
        import voxlet

        voxlet.tune_process()  # before torch, as in the CLI: OpenMP's wait policy
    if args.engine == "reference" or args.backend != "torch-free":
        import torch

        torch.set_num_threads(1)
    config, prompt = OUT / f"reference_{args.model}.yaml", OUT / "prompt3s.wav"
    if args.engine == "reference":
        import numpy as np
        from pocket_tts import TTSModel

        model = TTSModel.load_model(
            config=str(config), temp=0.3, eos_threshold=1e9, quantize=args.precision == "int8"
        )
        with wave.open(str(prompt)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        state = model.get_state_for_audio_prompt(torch.from_numpy(pcm).view(1, -1))

        def stream(text: str):
            for chunk in model.generate_audio_stream(state, text):
                yield chunk.numpy()
    else:
        from voxlet import TTS, GenerationOptions
        from voxlet.registry import official_config

        tts = TTS.load(
            config=official_config(args.model),
            weights=args.weights,
            tokenizer=args.tokenizer,
            precision=args.precision,
            backend=args.backend,
        )
        voice = tts.voice(str(prompt))
        opts = GenerationOptions(temperature=0.3, eos_threshold=1e9, on_no_eos="ignore")

        def stream(text: str):
            return tts.stream(text, voice, opts)

    peak = PeakRss()
    out = {"engine": args.engine, "model": args.model, "precision": args.precision}
    if args.engine == "voxlet":
        out["backend"] = args.backend
    out["runs"] = args.runs
    out.update(_measure(stream, args.runs))
    out["peak_rss_mb"] = round(peak.stop(), 1)
    print(json.dumps(out), flush=True)


# ---- orchestration ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "int8", "both"], default="both")
    parser.add_argument("--model", default="english", help="an official layout (random weights)")
    parser.add_argument("--weights", type=Path, help="default: bench-out/MODEL-random.safetensors")
    parser.add_argument(
        "--tokenizer", type=Path, default=ROOT.parent / "shared" / "fixtures" / "tokenizer.model"
    )
    parser.add_argument(
        "--reference-python", type=Path, default=OUT / "ref-venv" / "bin" / "python"
    )
    parser.add_argument("--backend", default="torch-free", help="voxlet's: torch-free or native")
    parser.add_argument("--engine", choices=["voxlet", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        run_engine(args)
        return
    from benches.bench_rtf import torch_baseline_mb

    OUT.mkdir(exist_ok=True)
    args.weights = args.weights or random_weights(args.model)
    write_prompt(OUT / "prompt3s.wav")
    config = OUT / f"reference_{args.model}.yaml"
    write_reference_config(config, args.weights, args.tokenizer, args.model)
    baseline = torch_baseline_mb()
    precisions = ["fp32", "int8"] if args.precision == "both" else [args.precision]
    for precision in precisions:
        rows = {}
        for engine, python in (("reference", args.reference_python), ("voxlet", sys.executable)):
            cmd = [
                str(python),
                __file__,
                "--engine",
                engine,
                "--model",
                args.model,
                "--precision",
                precision,
                "--runs",
                str(args.runs),
                "--weights",
                str(args.weights),
                "--tokenizer",
                str(args.tokenizer),
                "--backend",
                args.backend,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=OUT)
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-3000:])
                raise SystemExit(f"{engine} failed")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            if engine == "reference" or args.backend != "torch-free":  # else the whole process
                row["rss_above_torch_mb"] = round(row["peak_rss_mb"] - baseline, 1)
            rows[engine] = row
            print(json.dumps(row), flush=True)
        ref, vox = rows["reference"], rows["voxlet"]
        ratios = {
            k: round(vox[k] / ref[k], 2)
            for k in vox
            if isinstance(vox[k], float) and isinstance(ref.get(k), float) and ref[k]
        }
        print(json.dumps({"ratios_voxlet_over_reference": precision, **ratios}), flush=True)


if __name__ == "__main__":
    main()
