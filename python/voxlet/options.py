"""Per-call generation knobs (nothing per-call is stored on the model), and the precisions a
model loads in."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from voxlet.errors import ConfigError

PRECISIONS = ("fp32", "int8")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


MIN_TOKENS_PER_CHUNK = 8
MAX_FRAMES = 10_000  # per chunk (13 min): each chunk's KV cache is allocated for all of them
MAX_LSD_STEPS = 1000
_INTS = ("lsd_steps", "frames_after_eos", "max_frames", "max_tokens_per_chunk", "seed")
_FLOATS = ("temperature", "noise_clamp", "eos_threshold", "speed")
MIN_SPEED, MAX_SPEED = 0.25, 4.0  # as the Rust time stretch accepts
_OPTIONAL = (
    "temperature",
    "noise_clamp",
    "eos_threshold",
    "frames_after_eos",
    "max_frames",
    "seed",
)


def _check_types(opts: GenerationOptions) -> None:
    for name in (*_INTS, *_FLOATS):
        value = getattr(opts, name)
        if value is None and name in _OPTIONAL:
            continue
        kinds: tuple[type, ...] = (int,) if name in _INTS else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            want = "an integer" if name in _INTS else "a number"
            raise ConfigError(f"{name}: must be {want}, got {value!r}")


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Options of one `TTS.stream()` / `TTS.synthesize()` call.

    Args:
        temperature: variance of the flow head's start noise (std = sqrt(temperature));
            None uses the model's default (0.3 for recent English models, else 0.7).
        lsd_steps: flow-head decode steps per latent frame.
        noise_clamp: truncate the start noise to [-clamp, clamp]; None for no truncation.
        eos_threshold: a frame ends speech when its raw EOS logit exceeds this; None uses the
            model's default (-4.0 unless the config says otherwise).
        frames_after_eos: frames generated after the first EOS; None guesses per chunk.
        max_frames: hard cap on latent frames per text chunk; None uses the length estimate.
        max_tokens_per_chunk: long text is split into chunks of at most this many tokens.
        seed: seed of the noise generator; None draws a fresh seed.
        on_no_eos: what to do when a chunk hits its length limit without EOS.
        speed: playback speed with the pitch kept (0.25-4.0; 2.0 is twice as fast), applied to
            the audio after the decoder, frame by frame.
        normalize: say written forms as words first ("$4.50" -> "four dollars and fifty
            cents"; `voxlet.text.normalize`), for a model whose language has rules (English);
            False gives the model the text as written (the reference's behaviour).
    """

    temperature: float | None = None
    lsd_steps: int = 1
    noise_clamp: float | None = None
    eos_threshold: float | None = None
    frames_after_eos: int | None = None
    max_frames: int | None = None
    max_tokens_per_chunk: int = 50
    seed: int | None = None
    on_no_eos: Literal["warn", "ignore", "raise"] = "warn"
    speed: float = 1.0
    normalize: bool = True

    def __post_init__(self) -> None:
        _check_types(self)
        if not (math.isfinite(self.speed) and MIN_SPEED <= self.speed <= MAX_SPEED):
            raise ConfigError(f"speed: must be {MIN_SPEED}..{MAX_SPEED}, got {self.speed}")
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"normalize: must be True or False, got {self.normalize!r}")
        if self.temperature is not None and not (
            math.isfinite(self.temperature) and self.temperature >= 0
        ):
            raise ConfigError(f"temperature: must be a finite number >= 0, got {self.temperature}")
        if not 1 <= self.lsd_steps <= MAX_LSD_STEPS:
            raise ConfigError(f"lsd_steps: must be 1..{MAX_LSD_STEPS}, got {self.lsd_steps}")
        if self.noise_clamp is not None and not self.noise_clamp > 0:
            raise ConfigError(f"noise_clamp: must be > 0, got {self.noise_clamp}")
        if self.eos_threshold is not None and math.isnan(self.eos_threshold):
            raise ConfigError("eos_threshold: must not be NaN")
        if self.frames_after_eos is not None and self.frames_after_eos < 0:
            raise ConfigError(f"frames_after_eos: must be >= 0, got {self.frames_after_eos}")
        if self.max_frames is not None and not 1 <= self.max_frames <= MAX_FRAMES:
            raise ConfigError(f"max_frames: must be 1..{MAX_FRAMES}, got {self.max_frames}")
        if not MIN_TOKENS_PER_CHUNK <= self.max_tokens_per_chunk <= MAX_FRAMES:
            raise ConfigError(
                f"max_tokens_per_chunk: must be {MIN_TOKENS_PER_CHUNK}..{MAX_FRAMES} (preparing "
                f"a chunk adds a capital and a full stop), got {self.max_tokens_per_chunk}"
            )
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed: must be an integer from 0 to 2**63 - 1, got {self.seed}")
        if self.on_no_eos not in ("warn", "ignore", "raise"):
            raise ConfigError(f"on_no_eos: must be warn|ignore|raise, got {self.on_no_eos!r}")

    def replace(self, **changes: object) -> GenerationOptions:
        """Returns a copy with the given fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
