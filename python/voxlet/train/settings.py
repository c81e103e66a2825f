"""The training stages' settings, by name: what a run saves and resumes with, and what the
command line's flags set. No PyTorch here (the CLI builds its flags from these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodecSettings:
    steps: int = 20000
    batch: int = 8
    crop_frames: int = 18  # 1.44 s
    lr: float = 1e-3
    warmup: int = 200
    kl_weight: float = 1e-3
    mel_weight: float = 1.0
    clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    save_every: int = 200
    val_every: int = 500
    val_items: int = 16


@dataclass(frozen=True)
class FlowSettings:
    steps: int = 30000
    batch: int = 16
    lr: float = 5e-4
    warmup: int = 500
    flow_samples: int = 4
    loss: str = "energy"  # or "mse"
    eos_weight: float = 0.2
    eos_frames: int = 2
    voice_min: int = 12  # voice prompt length in frames: 12..25 (~1-2 s)
    voice_max: int = 25
    max_frames: int = 200  # longer utterances are left out
    ema: float = 0.999
    clip: float = 1.0
    seed: int = 0
    log_every: int = 10
    save_every: int = 200
    val_every: int = 500
    val_items: int = 32
