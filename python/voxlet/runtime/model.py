"""What the runtime asks of a loaded model (`SpeechModel`): the FlowLM side, run on the engine
thread, the decoder side, run on the engine's decoder thread, and its voices (what `TTS` asks).
Two models answer it: the PyTorch one (`voxlet.model.speech.TorchSpeech`) and voxlet's own
runtime with no PyTorch (`voxlet.native.speech.NativeSpeech`). Latents, states, voices and
noise are whatever the model makes of them; the runtime only passes them back.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voxlet.plan import ChunkPlan


class SpeechModel(Protocol):
    sliced_prefill: bool  # whether a chunk's text may be prefilled a slice at a time
    has_voice_cloning: bool  # whether `clone` can work (the checkpoint has an encoder)

    def inference(self) -> AbstractContextManager[Any]:
        """Entered by each worker thread around its work (PyTorch: no autograd)."""
        ...

    def use_threads(self, n: int) -> None:
        """The calling thread's compute threads from now on."""
        ...

    def rng(self, seed: int) -> Any:
        """A stream's own noise source, seeded."""
        ...

    def noise(self, plan: ChunkPlan, rng: Any) -> Any:
        """The flow head's start noise for the next frame, drawn from `rng`."""
        ...

    def prompt_chunk(self, voice: Any, plan: ChunkPlan) -> Any:
        """A fresh state: the voice's prefix copied in, the chunk's text prefilled."""
        ...

    def chunk_state(self, voice: Any, plan: ChunkPlan) -> Any:
        """A fresh state holding the voice's prefix, with room for the chunk's text and frames."""
        ...

    def embed(self, plan: ChunkPlan) -> Any:
        """The chunk's text embeddings, rows (T, D) that `prompt` takes in slices."""
        ...

    def prompt(self, rows: Any, state: Any) -> None:
        """Prefills rows of text embeddings into `state`."""
        ...

    def prompt_batch(self, jobs: list[tuple[Any, Any]]) -> None:
        """Prefills several states' rows (rows, state) together, each the bits `prompt` gives
        it alone; with several, each has two rows or more."""
        ...

    def step_batch(
        self, latents: list[Any], states: list[Any], noises: list[Any], lsd_steps: int
    ) -> list[tuple[Any, float]]:
        """One frame of each state: (the next normalized latent, its raw EOS logit); each
        gets the bits a step alone gives it."""
        ...

    def finite(self, latent: Any) -> bool: ...

    def decoder_state(self) -> Any:
        """A stream's fresh decoder state."""
        ...

    def decode(self, latents: list[Any], state: Any) -> npt.NDArray[np.float32]:
        """Normalized latents, in order -> their samples (len * 1920,), a writable float32
        array; advances `state`."""
        ...

    def decode_batch(self, jobs: list[tuple[list[Any], Any]]) -> list[npt.NDArray[np.float32]]:
        """Several streams' latents at once, each (latents, its state) -> its samples as
        `decode` gives them alone; advances every state. Runs on up to the calling thread's
        compute threads (`use_threads`)."""
        ...

    def is_voice(self, state: object) -> bool:
        """Whether `state` is a voice state of this model's kind."""
        ...

    def load_voice(self, path: Path) -> Any:
        """A voice from a voice file (the official safetensors layout)."""
        ...

    def clone(self, audio: npt.NDArray[np.float32]) -> Any:
        """A voice from mono 24 kHz audio (N,)."""
        ...

    def save_voice(self, voice: Any, path: Path) -> None:
        """Writes `voice` in the official layout."""
        ...
