"""Typed messages on the latent queue between the "flowlm" and "mimi" threads.

`Latent` carries one normalized latent f32 (1, 32) at 12.5 Hz, exactly as FlowLM emitted it;
de-normalization belongs to the decoder. `Silence` is a pause between two of them (samples at
24 kHz, pushed as zeros). `End` follows the last latent of the stream, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Latent:
    latent: Any  # (1, 32) normalized, the model's array type
    chunk_index: int
    frame_index: int  # frame number within the whole stream


@dataclass(frozen=True, slots=True)
class Silence:
    samples: int  # at 24 kHz


@dataclass(frozen=True, slots=True)
class End:
    n_frames: int


Message = Latent | Silence | End
