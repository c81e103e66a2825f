"""Writes a random-weight checkpoint in an official model's exact key layout and shapes.

Values do not change speed, so benchmarks and full-size tests use this instead of real weights.
Norm weights are ones, LayerScale and time-embedder alphas small, everything else N(0, 1/fan_in)
so activations stay finite through the whole model.

    python benches/make_checkpoint.py --model english --out /tmp/english-random.safetensors
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from voxlet.model.network import PocketTTS
from voxlet.registry import official_config


def random_state_dict(model: str, seed: int = 0, dtype: torch.dtype = torch.float32):
    cfg = official_config(model)
    with torch.device("meta"):
        network = PocketTTS(cfg)
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, meta in network.state_dict().items():
        shape = tuple(meta.shape)
        if key.endswith("freqs"):
            n = shape[0]
            t = torch.exp(-math.log(10000.0) * torch.arange(n, dtype=torch.float32) / n)
        elif key.endswith(
            ("norm1.weight", "norm2.weight", "out_norm.weight", "in_ln.weight", "emb_std")
        ):
            t = torch.ones(shape)
        elif key.endswith(("scale", "alpha")):
            t = torch.full(shape, 0.1)
        elif len(shape) == 1 or key.endswith(("bos_emb", "bos_before_voice", "emb_mean")):
            t = torch.randn(shape, generator=g) * 0.02
        else:
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        out[key] = t.to(dtype).contiguous()
    return out


def write_checkpoint(path: Path, model: str = "english", dtype: torch.dtype = torch.float32):
    save_file(random_state_dict(model, dtype=dtype), str(path), metadata={"format": "pt"})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="english")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bf16", action="store_true", help="store bfloat16, like the hub files")
    args = parser.parse_args()
    write_checkpoint(args.out, args.model, torch.bfloat16 if args.bf16 else torch.float32)
    print(args.out)


if __name__ == "__main__":
    main()
