"""Each stage alone, in one thread, on the full-size random checkpoint: where the time goes.

Prints one JSON line per precision: text prefill (14 tokens) with 1 and 2 torch threads, one
FlowLM step (transformer and flow head apart) at ~100 cached positions, and Mimi ms per frame
when 1, 2, 4 or 8 frames are decoded per call. Weights are partly warm in cache here, so these
are lower than the same stages inside a stream, where both threads share memory bandwidth.

    .venv/bin/python benches/bench_stages.py        # after bench_rtf.py wrote the checkpoint
"""

# ruff: noqa: E402  (voxlet.tune_process() runs before torch is imported)
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
import voxlet  # isort: skip

voxlet.tune_process()  # before torch, as the CLI: OpenMP's wait policy
from voxlet import TTS  # isort: skip
import torch

from benches.bench_kernels import median_us
from benches.bench_rtf import ROOT, TOKENIZER
from voxlet.model.layers.flow_net import lsd_decode
from voxlet.registry import official_config


def median_ms(fn: Callable[[], object]) -> float:
    return round(median_us(fn, repeats=20, warmup=1) / 1000, 2)


def stages(precision: str, weights: Path) -> dict[str, object]:
    tts = TTS.load(
        config=official_config("english"),
        weights=weights,
        tokenizer=TOKENIZER,
        precision=precision,
        backend="native",  # the PyTorch model's stages, one by one
    )
    flow_lm, mimi = tts.network.flow_lm, tts.network.mimi
    g = torch.Generator().manual_seed(0)
    out: dict[str, object] = {"precision": precision}
    text = torch.randn(1, 14, flow_lm.d_model, generator=g)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out[f"prefill_14_tokens_{threads}_threads_ms"] = median_ms(
            lambda: flow_lm.prompt(text, flow_lm.init_state(64))
        )
    torch.set_num_threads(1)
    state = flow_lm.init_state(1000)
    flow_lm.prompt(torch.randn(1, 100, flow_lm.d_model, generator=g), state)
    latent, noise = torch.randn(1, 32, generator=g), torch.zeros(1, 32)
    hidden = flow_lm.hidden(latent, state)
    out["flowlm_step_ms"] = median_ms(lambda: flow_lm.step(latent, state, noise, 1))
    out["flowlm_transformer_ms"] = median_ms(lambda: flow_lm.hidden(latent, state))
    out["flow_head_ms"] = median_ms(lambda: lsd_decode(flow_lm.flow_net, hidden, noise, 1))
    for group in (1, 2, 4, 8):
        decoder = mimi.init_decoder_state()
        latents = torch.randn(1, group, 32, generator=g)
        ms = median_ms(lambda: mimi.decode(latents, decoder))  # noqa: B023
        out[f"mimi_ms_per_frame_group_{group}"] = round(ms / group, 2)
    return out


def main() -> None:
    weights = ROOT / "bench-out" / "english-random.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights} is missing: run benches/bench_rtf.py once first")
    with torch.inference_mode():
        for precision in ("fp32", "int8"):
            print(json.dumps(stages(precision, weights)), flush=True)


if __name__ == "__main__":
    main()
