"""One FlowLM step's linears at batch 1 (matrix-vector): fp32 vs int8 kernel choices, voxlet's
own int8 kernel (what precision="int8" uses) beside torch's.

Prints one JSON line per (shape, kernel): median microseconds and effective GB/s of weights read.

    .venv/bin/python benches/bench_kernels.py
"""

# ruff: noqa: E402  (voxlet.tune_process() runs before torch is imported)
from __future__ import annotations

import json
import statistics
import time

# isort: off
import voxlet  # isort: skip

voxlet.tune_process()  # before torch: its OpenMP settings
from voxlet._native import Int8Matrix  # isort: skip
import torch

# isort: on

SHAPES = {  # (out, in) of the english FlowLM transformer's linears; x6 layers per step
    "in_proj": (3072, 1024),
    "out_proj": (1024, 1024),
    "linear1": (4096, 1024),
    "linear2": (1024, 4096),
}


def median_us(fn, repeats: int = 300, warmup: int = 30) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def bench_shape(name: str, n_out: int, n_in: int, g: torch.Generator) -> None:
    w = torch.randn(n_out, n_in, generator=g) / n_in**0.5
    x = torch.randn(1, n_in, generator=g)
    scale = w.abs().amax(1) / 127
    w8 = torch.round(w / scale[:, None]).to(torch.int8)
    zero = torch.zeros(n_out, dtype=torch.long)
    q = torch.quantize_per_channel(w, scale.double(), zero, 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(q, None)
    ours, x_np = Int8Matrix(w.numpy()), x.numpy()
    kernels = {
        "int8_voxlet": (lambda: ours.apply(x_np), 1),
        "fp32_linear": (lambda: torch.nn.functional.linear(x, w), 4),
        "int8_dynamic_fbgemm": (lambda: torch.ops.quantized.linear_dynamic(x, packed, True), 1),
        "int8_weight_only": (lambda: torch.ops.aten._weight_int8pack_mm(x, w8, scale), 1),
    }
    for kernel, (fn, bytes_per_weight) in kernels.items():
        us = median_us(fn)
        gbs = n_out * n_in * bytes_per_weight / (us * 1e-6) / 1e9
        print(
            json.dumps(
                {
                    "linear": name,
                    "shape": [n_out, n_in],
                    "kernel": kernel,
                    "median_us": round(us, 1),
                    "weights_gb_s": round(gbs, 1),
                }
            )
        )


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    for name, (n_out, n_in) in SHAPES.items():
        bench_shape(name, n_out, n_in, g)


if __name__ == "__main__":
    main()
