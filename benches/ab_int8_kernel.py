"""voxlet's int8 engine against variants of itself, in one process, alternating.

This machine's speed drifts by 10-50 % between runs and within an hour, so comparing two builds
run at different times says little. Here the variants load side by side and take turns, several
rounds, each round: first audio (8 and 61 words, 3 samples each) and a 10 s stream. Prints one
JSON line per variant with medians. The variants:
- voxlet: int8 as shipped (native transformer stacks and flow head over voxlet's kernels);
- torch-layers: the same int8 matrices, each linear called from PyTorch's layers (no native
  stack or flow head), as before the fourth session;
- fbgemm: the fp32 model with every linear voxlet quantizes swapped for torch's dynamic-quantized
  linear, convolutions left float, as before voxlet had its own kernels.

    .venv/bin/python benches/ab_int8_kernel.py --rounds 6
"""

# ruff: noqa: E402  (voxlet.tune_process() runs before torch is imported)
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
import voxlet  # isort: skip

voxlet.tune_process()  # before torch, as the CLI: OpenMP's wait policy
from voxlet import TTS, GenerationOptions  # isort: skip
import torch
from torch import nn

from benches.bench_rtf import PARAGRAPH, ROOT, SHORT, TOKENIZER
from voxlet.model.voice import voice_from_conditioning
from voxlet.registry import official_config


class FbgemmLinear(nn.Module):
    """torch's dynamic int8 linear (fbgemm), per-channel weights, 7-bit activations."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        zero = torch.zeros_like(scale, dtype=torch.long)
        q = torch.quantize_per_channel(w, scale.double(), zero, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.packed = torch.ops.quantized.linear_prepack(q, bias)
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, x.shape[-1]), self.packed, True)
        return y.view(*x.shape[:-1], self.out_features)


def swap(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, FbgemmLinear(child))
        else:
            swap(child)


def load(variant: str) -> TTS:
    weights = ROOT / "bench-out" / "english-random.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights} is missing: run benches/bench_rtf.py once first")
    config = official_config("english")
    if variant in ("voxlet", "torch-layers"):
        backend = "native" if variant == "voxlet" else "torch"
        return TTS.load(
            config=config, weights=weights, tokenizer=TOKENIZER, precision="int8", backend=backend
        )
    tts = TTS.load(
        config=config, weights=weights, tokenizer=TOKENIZER, precision="fp32", backend="torch"
    )
    net = tts.network
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notice for quantize_per_channel
        net.flow_lm.flow_net.clear_cache()
        for part in (net.flow_lm.transformer, net.flow_lm.flow_net, net.mimi.decoder_transformer):
            swap(part)
    return tts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = {name: load(name) for name in ("voxlet", "torch-layers", "fbgemm")}
    g = torch.Generator().manual_seed(0)
    voices = {}
    with torch.no_grad():
        prefix = torch.randn(1, 40, 1024, generator=g) * 0.1
        for name, tts in variants.items():
            voices[name] = tts.voice(voice_from_conditioning(tts.network.flow_lm, prefix))
    opts = GenerationOptions(temperature=0.3, eos_threshold=1e9, seed=1, on_no_eos="ignore")
    keys = (
        "first_audio_short_ms",
        "first_audio_paragraph_ms",
        "x_real_time",
        "flowlm_step_ms",
        "mimi_frame_ms",
    )
    results: dict[str, dict[str, list[float]]] = {n: {k: [] for k in keys} for n in variants}

    def first_audio_ms(tts: TTS, voice, text: str) -> float:
        t0 = time.perf_counter()
        stream = tts.open_stream(text, voice, opts.replace(max_frames=20))
        frames = stream.frames()
        next(frames)
        ms = 1000 * (time.perf_counter() - t0)
        stream.stop()
        return ms

    for i in range(args.rounds):
        order = list(variants)[i % 3 :] + list(variants)[: i % 3]  # each goes first in turn
        for name in order:
            tts, voice, r = variants[name], voices[name], results[name]
            for _ in range(3):
                r["first_audio_short_ms"].append(first_audio_ms(tts, voice, SHORT))
                r["first_audio_paragraph_ms"].append(first_audio_ms(tts, voice, PARAGRAPH))
            t0 = time.perf_counter()
            stream = tts.open_stream(SHORT, voice, opts.replace(max_frames=125))
            n = sum(len(f) for f in stream.frames())
            r["x_real_time"].append(n / 24000 / (time.perf_counter() - t0))
            r["flowlm_step_ms"].append(1000 * statistics.median(stream.stats.flowlm_step_s))
            r["mimi_frame_ms"].append(1000 * statistics.median(stream.stats.mimi_frame_s))
    for name, r in results.items():
        out: dict[str, object] = {"kernel": name, "rounds": args.rounds}
        out.update({k: round(statistics.median(v), 2) for k, v in r.items()})
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
