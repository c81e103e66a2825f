"""voxlet's int8 product over several activation rows (a prefill, a batched step, the decoder's
16 rows a frame), each path side by side: `VOXLET_INT8_VNNI=256` (256-bit forms only), the
512-bit forms for four rows or more (`VOXLET_INT8_AMX=0`), and the default (AMX tiles for six
rows or more where the CPU has them, else the same as the second), each in a fresh process (the
switches are read once), alternating for several rounds, since this machine's speed drifts. One
JSON line per (path, shape, rows, threads): the median GMAC/s.

    .venv/bin/python benches/bench_int8_rows.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = ((4096, 1024), (1024, 4096), (2048, 512))  # FlowLM's and Mimi's feed-forward linears
ROWS = (2, 4, 6, 16, 39, 64)


def worker() -> None:
    import numpy as np

    from voxlet._native import Int8Matrix

    rng = np.random.default_rng(0)
    for rows_out, cols in SHAPES:
        m8 = Int8Matrix(rng.standard_normal((rows_out, cols)).astype(np.float32) * 0.02)
        for m in ROWS:
            x = rng.standard_normal((m, cols)).astype(np.float32)
            for threads in (1, 2):
                m8.apply(x, threads)
                n = max(5, 400 // m)
                t = time.perf_counter()
                for _ in range(n):
                    m8.apply(x, threads)
                seconds = (time.perf_counter() - t) / n
                gmacs = m * rows_out * cols / seconds / 1e9
                print(
                    json.dumps(
                        {
                            "shape": f"{rows_out}x{cols}",
                            "rows": m,
                            "threads": threads,
                            "gmac_s": gmacs,
                        }
                    )
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    paths = {
        "vnni-256": {"VOXLET_INT8_VNNI": "256", "VOXLET_INT8_AMX": "0"},
        "vnni-512": {"VOXLET_INT8_VNNI": "1", "VOXLET_INT8_AMX": "0"},
        "amx": {"VOXLET_INT8_VNNI": "1", "VOXLET_INT8_AMX": "1"},  # where the CPU has AMX
    }
    got: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for name, setting in paths.items():
            env = {**os.environ, **setting}
            out = subprocess.run(
                [sys.executable, __file__, "--worker"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for line in out.splitlines():
                row = json.loads(line)
                key = (name, row["shape"], row["rows"], row["threads"])
                got.setdefault(key, []).append(row["gmac_s"])
    for (name, shape, rows, threads), values in got.items():
        print(
            json.dumps(
                {
                    "bench": "int8_rows",
                    "path": name,
                    "shape": shape,
                    "rows": rows,
                    "threads": threads,
                    "gmac_s": round(statistics.median(values), 1),
                }
            )
        )


if __name__ == "__main__":
    main()
