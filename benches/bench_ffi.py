"""Per-frame cost of the Rust audio core as Python sees it (the criterion benches' operations).

The difference to `cargo bench -p voxlet-audio` is the cost of crossing the boundary. Prints
one JSON object per operation: median microseconds per 1920-sample (80 ms) frame.

    python benches/bench_ffi.py
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from voxlet.audio import PcmPipeline, StreamResampler, f32_to_bytes, f32_to_i16

FRAME = np.sin(np.arange(1920, dtype=np.float32) * 0.01).astype(np.float32)


def measure(name: str, fn: Callable[[], object], repeats: int = 2000) -> dict:
    for _ in range(200):  # burn-in
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    result = {
        "op": name,
        "median_us": round(statistics.median(samples) / 1000, 3),
        "p99_us": round(sorted(samples)[int(0.99 * len(samples))] / 1000, 3),
        "frame_samples": 1920,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    out_i16 = np.empty(1920, np.int16)
    measure("f32_to_i16_into", lambda: f32_to_i16(FRAME, out_i16))
    measure("f32_to_bytes_s16", lambda: f32_to_bytes(FRAME, "s16"))
    for out_rate in (24000, 48000):
        frame_out = 1920 * out_rate // 24000
        pipe = PcmPipeline(24000, out_rate, capacity_frames=frame_out * 8)
        out = np.empty(frame_out, np.float32)
        name = "pipeline_push_pop_24k" + ("" if out_rate == 24000 else f"_to_{out_rate // 1000}k")
        measure(name, lambda pipe=pipe, out=out: (pipe.push(FRAME), pipe.pop_into(out)))
    for speed in (0.5, 1.5, 2.0):  # the time stretch pops what one input frame makes
        pipe = PcmPipeline(24000, 24000, capacity_frames=1 << 16, speed=speed)
        out = np.empty(8192, np.float32)
        measure(
            f"pipeline_push_pop_speed_{speed}",
            lambda pipe=pipe, out=out: (pipe.push(FRAME), pipe.pop_into(out)),
        )
    for rate in (16000, 44100, 48000):
        r = StreamResampler(24000, rate)
        measure(f"stream_resample_24000_to_{rate}", lambda r=r: r.process(FRAME))
    measure(
        "numpy_reference_f32_to_i16",
        lambda: np.clip(np.round(FRAME * np.float32(32767)), -32768, 32767).astype(np.int16),
    )


if __name__ == "__main__":
    main()
