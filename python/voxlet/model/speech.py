"""The PyTorch model as the runtime's `SpeechModel`: FlowLM steps and Mimi decodes on torch
tensors (with whatever native kernels the network was built with), no autograd, each worker
thread's own torch thread count; and its voices (files, cloning, export).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from voxlet.errors import VoiceError
from voxlet.model.flow_lm import FlowLMState
from voxlet.model.generation import make_noise, prompt_chunk
from voxlet.model.mimi import MimiDecoderState
from voxlet.model.network import PocketTTS
from voxlet.model.voice import VoiceState, load_voice_file, save_voice_file, voice_from_audio
from voxlet.model.weights import cloning_weights_released, load_cloning_weights
from voxlet.plan import ChunkPlan


class TorchSpeech:
    def __init__(
        self, network: PocketTTS, cloning_source: Path | None = None, has_voice_cloning: bool = True
    ):
        self.network = network
        self.has_voice_cloning = has_voice_cloning
        self._cloning_source = cloning_source  # where released cloning weights are read back
        self.flow_lm = network.flow_lm
        self.mimi = network.mimi
        # slices of a prefill give the bits of one only where the native stack runs it
        self.sliced_prefill = self.flow_lm.transformer.kernel is not None

    def inference(self) -> AbstractContextManager[None]:
        return torch.no_grad()

    def use_threads(self, n: int) -> None:
        # torch applies the process-wide count to a thread at its first parallel op, which
        # would undo a count set before it; asking for the count first gets that done, so
        # the setting below stays this thread's own
        torch.get_num_threads()
        torch.set_num_threads(n)

    def rng(self, seed: int) -> torch.Generator:
        generator = torch.Generator()
        generator.manual_seed(seed)
        return generator

    def noise(self, plan: ChunkPlan, rng: torch.Generator) -> torch.Tensor:
        return make_noise(plan, rng)

    def prompt_chunk(self, voice: VoiceState, plan: ChunkPlan) -> FlowLMState:
        return prompt_chunk(self.flow_lm, voice, plan)

    def chunk_state(self, voice: VoiceState, plan: ChunkPlan) -> FlowLMState:
        return voice.to_flow_lm_state(voice.n_positions + plan.positions)

    def embed(self, plan: ChunkPlan) -> torch.Tensor:
        return self.flow_lm.embed_tokens(torch.from_numpy(plan.token_ids).view(1, -1))[0]

    def prompt(self, rows: torch.Tensor, state: FlowLMState) -> None:
        self.flow_lm.prompt(rows.unsqueeze(0), state)

    def prompt_batch(self, jobs: list[tuple[torch.Tensor, FlowLMState]]) -> None:
        for rows, state in jobs:  # one at a time: the bits of each alone
            self.prompt(rows, state)

    def step_batch(
        self,
        latents: list[torch.Tensor | None],
        states: list[FlowLMState],
        noises: list[torch.Tensor],
        lsd_steps: int,
    ) -> list[tuple[torch.Tensor, float]]:
        out = self.flow_lm.step_batch(latents, states, noises, lsd_steps)
        return [(latent, float(eos)) for latent, eos in out]

    def finite(self, latent: torch.Tensor) -> bool:
        return bool(torch.isfinite(latent).all())

    def decoder_state(self) -> MimiDecoderState:
        return self.mimi.init_decoder_state()

    def decode(
        self, latents: list[torch.Tensor], state: MimiDecoderState
    ) -> npt.NDArray[np.float32]:
        x = torch.cat(latents).unsqueeze(0)  # (1, n, 32)
        return self.mimi.decode(self.flow_lm.denormalize(x), state).view(-1).numpy()

    def decode_batch(
        self, jobs: list[tuple[list[torch.Tensor], MimiDecoderState]]
    ) -> list[npt.NDArray[np.float32]]:
        # one stream after another: PyTorch's convolutions are not batch-invariant in every shape
        return [self.decode(latents, state) for latents, state in jobs]

    # voices -----------------------------------------------------------------------------------

    def is_voice(self, state: object) -> bool:
        return isinstance(state, VoiceState)

    def load_voice(self, path: Path) -> VoiceState:
        with torch.no_grad():
            return load_voice_file(path, self.flow_lm)

    def clone(self, audio: npt.NDArray[np.float32]) -> VoiceState:
        """Mono 24 kHz audio (N,) -> a voice; released cloning weights are read back first."""
        if cloning_weights_released(self.network):
            if self._cloning_source is None:
                raise VoiceError("the voice-cloning weights were released and have no source")
            load_cloning_weights(self.network, self._cloning_source)
        with torch.no_grad():
            return voice_from_audio(self.flow_lm, self.mimi, torch.from_numpy(audio))

    def save_voice(self, voice: VoiceState, path: Path) -> None:
        save_voice_file(voice, path)
