"""voxlet against Gradium's Phonon (PyPI `ptts`), same random full-size weights, same sitting.

Phonon reads the official key layout of the english_2026-01 model (its speaker projection is
512 wide; the later layouts' 32-wide one it refuses), so both engines load one random bf16 file
in that layout (`make_checkpoint.py --model english_2026-01 --bf16`; the FlowLM and the Mimi
decoder are the same size as `english`'s). This script writes Phonon's checkpoint folder beside
it (its `config.json` from voxlet's config of the model, a `tokenizer.json` with the same
pieces and scores as the SentencePiece model, the weights linked), then runs, each in a fresh
process: Phonon at 1 and 2 compute threads (its faster figure is the one compared), and
`bench_rtf.py --backend torch-free` at the matching precision (int8 against q8_0, fp32 against
f32). One JSON line per engine and a ratio line per precision.

Phonon is installed in its own venv, never in voxlet's:

    python3 -m venv /tmp/ptts-venv && /tmp/ptts-venv/bin/pip install ptts
    .venv/bin/python benches/bench_phonon.py --phonon-python /tmp/ptts-venv/bin/python

Phonon's figures, as bench_rtf's: first audio for the 8-word sentence and the 61-word paragraph
(voice ready: the same 40-frame random prefix, given as an embedding), x real time over 10 s of
audio with EOS disabled (from opening the stream to the 125th frame; Phonon caps a stream's length
by its text, so the paragraph is the text here, where voxlet's is the sentence with a frame
limit: the longer prefill counts against Phonon by about one first audio in 2.5 s), peak RSS of
the whole process while streaming (VmHWM, reset after loading), cold start from a new process to
first audio (weights in the page cache).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VOXLET_SHARED", ROOT.parent / "shared"))
TOKENIZER = SHARED / "fixtures" / "tokenizer.model"
MODEL = "english_2026-01"
SAMPLES_10S = 240_000
PEER_PRECISION = {"int8": "q8_0", "fp32": "f32"}


def phonon_config(model: str) -> dict:
    """Phonon's `config.json` for an official layout, from voxlet's config of it."""
    from voxlet.registry import official_config

    cfg = official_config(model)
    t = cfg.flow_lm.transformer
    if t.num_kv_heads is not None or cfg.flow_lm.flow.type != "lsd" or cfg.mimi.inner_dim != 512:
        raise SystemExit(f"--model: Phonon reads the english_2026-01 layout, not {model}'s")
    seanet, mt = cfg.mimi.seanet, cfg.mimi.transformer
    return {
        "flow_lm": {
            "d_model": t.d_model,
            "num_heads": t.num_heads,
            "num_layers": t.num_layers,
            "dim_feedforward": t.dim_feedforward or t.d_model * t.hidden_scale,
            "max_period": t.max_period,
            "n_bins": cfg.flow_lm.lookup_table.n_bins,
            "lut_dim": cfg.flow_lm.lookup_table.dim,
            "flow_dim": cfg.flow_lm.flow.dim,
            "flow_depth": cfg.flow_lm.flow.depth,
            "ldim": cfg.mimi.quantizer.dimension,
        },
        "mimi": {
            "channels": cfg.mimi.channels,
            "sample_rate": cfg.mimi.sample_rate,
            "frame_rate": cfg.mimi.frame_rate,
            "dimension": seanet.dimension,
            "quantizer_dimension": cfg.mimi.quantizer.dimension,
            "quantizer_output_dimension": cfg.mimi.quantizer.output_dimension,
            "n_filters": seanet.n_filters,
            "n_residual_layers": seanet.n_residual_layers,
            "ratios": list(seanet.ratios),
            "kernel_size": seanet.kernel_size,
            "last_kernel_size": seanet.last_kernel_size,
            "residual_kernel_size": seanet.residual_kernel_size,
            "dilation_base": seanet.dilation_base,
            "compress": seanet.compress,
            "transformer_d_model": mt.d_model,
            "transformer_num_heads": mt.num_heads,
            "transformer_num_layers": mt.num_layers,
            "transformer_layer_scale": mt.layer_scale,
            "transformer_context": mt.context,
            "transformer_max_period": mt.max_period,
            "transformer_dim_feedforward": mt.dim_feedforward,
            "downsample_channel_wise": False,
        },
        "temp": 0.3,
        "lsd_decode_steps": 1,
        "eos_threshold": cfg.default_eos_threshold,
        "fuser": {"sum": [], "streaming_sum": [], "prepend": [], "cross": []},
        "conditioners": [],
        "model_id": None,
    }


def tokenizer_json(spm_path: Path) -> dict:
    """A Hugging Face `tokenizers` Unigram with the SentencePiece model's pieces and scores."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    space = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"}
    space["split"] = True
    vocab = [[sp.id_to_piece(i), float(sp.get_score(i))] for i in range(sp.get_piece_size())]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": space,
        "post_processor": None,
        "decoder": space,
        "model": {"type": "Unigram", "unk_id": sp.unk_id(), "vocab": vocab, "byte_fallback": False},
    }


def write_phonon_checkpoint(weights: Path, model: str, out: Path) -> Path:
    """Phonon's checkpoint folder for `weights`; returns its config.json."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(phonon_config(model), indent=1))
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json(TOKENIZER)))
    link = out / "model.safetensors"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(weights.resolve())
    return out / "config.json"


def phonon_worker(args: argparse.Namespace) -> dict:
    """Runs under Phonon's own Python: numpy and ptts only, no voxlet."""
    t_process = float(args.started)
    import numpy as np
    import ptts

    sys.path.insert(0, str(ROOT))
    from benches.bench_rtf import FIRST_AUDIO_REPEATS, PARAGRAPH, SHORT, PeakRss

    ptts.set_num_threads(args.threads)
    tts = ptts.TTS(args.config, lang="none", quant=args.quant, eos_threshold=1e9)
    d_model = json.loads(Path(args.config).read_text())["flow_lm"]["d_model"]
    prefix = (np.random.default_rng(0).standard_normal((40, d_model)) * 0.1).astype(np.float32)
    tts.add_voice_from_embedding("bench", prefix)

    def first_audio_ms(text: str) -> float:
        t0 = time.perf_counter()
        with tts.stream(text, voice="bench") as chunks:
            next(chunks)
            return 1000 * (time.perf_counter() - t0)

    first_audio_ms(SHORT)
    cold_ms = 1000 * (time.time() - t_process)  # includes the stream's close: a ms or two
    peak = PeakRss()
    results: dict[str, list[float]] = {"first_audio_short_ms": [], "first_audio_paragraph_ms": []}
    results["x_real_time"] = []
    for _ in range(args.runs):
        for _ in range(FIRST_AUDIO_REPEATS):
            results["first_audio_short_ms"].append(first_audio_ms(SHORT))
            results["first_audio_paragraph_ms"].append(first_audio_ms(PARAGRAPH))
        t0 = time.perf_counter()
        n = 0
        with tts.stream(PARAGRAPH, voice="bench") as chunks:
            for chunk in chunks:
                n += len(chunk)
                if n >= SAMPLES_10S:
                    break
        if n < SAMPLES_10S:
            raise SystemExit(f"Phonon stopped after {n} samples, before 10 s")
        results["x_real_time"].append(n / 24000 / (time.perf_counter() - t0))
    out: dict[str, object] = {
        "engine": "phonon",
        "version": ptts.__version__,
        "quant": tts.quant,
        "compute_threads": args.threads,
        "runs": args.runs,
        "cold_start_first_audio_ms": round(cold_ms, 1),
    }
    for key, values in results.items():
        out[key] = round(statistics.median(values), 3 if key.startswith("x_") else 1)
    out["peak_rss_mb"] = round(peak.stop(), 1)
    return out


def run_json(cmd: list[str]) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{cmd[1]} failed with exit status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phonon-python", type=Path, help="a Python with `ptts` installed")
    parser.add_argument("--weights", type=Path, help="default: bench-out/english_2026-01-bf16")
    parser.add_argument("--precision", action="append", choices=sorted(PEER_PRECISION))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--phonon-threads", type=int, action="append", help="default: 1 and 2")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--quant", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--started", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(phonon_worker(args)), flush=True)
        return
    if args.phonon_python is None or not args.phonon_python.is_file():
        raise SystemExit("--phonon-python: the Python of a venv with `ptts` installed is required")
    weights = args.weights or ROOT / "bench-out" / f"{MODEL}-bf16.safetensors"
    if not weights.is_file():
        sys.path.insert(0, str(ROOT))
        import torch

        from benches.make_checkpoint import write_checkpoint

        weights.parent.mkdir(parents=True, exist_ok=True)
        write_checkpoint(weights, MODEL, torch.bfloat16)
    config = write_phonon_checkpoint(weights, MODEL, ROOT / "bench-out" / f"phonon-{MODEL}")
    subprocess.run(["cat", str(weights)], stdout=subprocess.DEVNULL, check=True)  # page cache
    for precision in args.precision or ["int8", "fp32"]:
        peers = []
        for threads in args.phonon_threads or [1, 2]:
            peer = run_json(
                [
                    str(args.phonon_python),
                    __file__,
                    "--worker",
                    "--config",
                    str(config),
                    "--quant",
                    PEER_PRECISION[precision],
                    "--threads",
                    str(threads),
                    "--runs",
                    str(args.runs),
                    "--started",
                    str(time.time()),
                ]
            )
            print(json.dumps(peer), flush=True)
            peers.append(peer)
        ours = run_json(
            [
                sys.executable,
                str(ROOT / "benches" / "bench_rtf.py"),
                "--model",
                MODEL,
                "--weights",
                str(weights),
                "--precision",
                precision,
                "--backend",
                "torch-free",
                "--runs",
                str(args.runs),
                "--quick",
            ]
        )
        print(json.dumps({"engine": "voxlet", **ours}), flush=True)
        best = max(peers, key=lambda p: p["x_real_time"])
        ratio = {
            "precision": precision,
            "peer": f"phonon {best['quant']} at {best['compute_threads']} threads",
            "x_real_time_ratio": round(ours["x_real_time"] / best["x_real_time"], 2),
            "first_audio_short_ratio": round(
                ours["first_audio_short_ms"] / best["first_audio_short_ms"], 2
            ),
            "cold_start_ratio": round(
                ours["cold_start_first_audio_ms"]
                / min(p["cold_start_first_audio_ms"] for p in peers),
                2,
            ),
            "peak_rss_ratio": round(ours["peak_rss_mb"] / min(p["peak_rss_mb"] for p in peers), 2),
        }
        print(json.dumps(ratio), flush=True)


if __name__ == "__main__":
    main()
