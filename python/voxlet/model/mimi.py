"""Mimi codec: encode 24 kHz audio -> raw latents (B, T, 32) at 12.5 Hz; decode latents -> PCM.

Decoding streams: `decode(latents, state)` takes de-normalized latents (B, T, 32) and returns
exactly T * 1920 samples (B, 1, T*1920) with no look-ahead; `MimiDecoderState` is owned by the
decoding thread. The decoder transformer keeps a ring of `context` positions, so a step's cost
does not grow with stream length. Encoding is one-shot (voice prompts).

The decoder side (quantizer output, upsample, decoder transformer, decoder SEANet) has widths of
its own where the config gives `decoder_seanet` / `decoder_transformer` (the small layouts: 128
wide, context 50, kernel 3); otherwise it mirrors the encoder side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from voxlet.config import MimiConfig, MimiTransformerConfig
from voxlet.model.backend import TORCH, Backend
from voxlet.model.layers.conv import (
    ConvState,
    ConvTrState,
    StreamingConv1d,
    StreamingConvTranspose1d,
)
from voxlet.model.layers.seanet import SEANetDecoder, SEANetEncoder
from voxlet.model.layers.transformer import Transformer


@dataclass(slots=True)
class MimiDecoderState:
    upsample: ConvTrState
    transformer: list
    seanet: object  # the SEANet decoder's: a list of conv states, or its kernel's state
    frames: int = 0  # latent frames decoded so far


class _CodecTransformer(nn.Module):
    """Runs the transformer on conv-layout features (B, C, T)."""

    def __init__(self, cfg: MimiTransformerConfig, backend: Backend = TORCH):
        super().__init__()
        self.transformer = Transformer(
            cfg.d_model,
            cfg.num_heads,
            cfg.num_layers,
            cfg.dim_feedforward,
            cfg.max_period,
            context=cfg.context,
            layer_scale=True,
            backend=backend,
        )

    def forward(self, x: torch.Tensor, state: list) -> torch.Tensor:
        return self.transformer(x.transpose(1, 2), state).transpose(1, 2)


class _Downsample(nn.Module):
    def __init__(self, dim: int, inner_dim: int, stride: int):
        super().__init__()
        self.conv = StreamingConv1d(
            dim, inner_dim, 2 * stride, stride, bias=False, pad_mode="replicate"
        )


class _Upsample(nn.Module):
    def __init__(self, dim: int, stride: int):
        super().__init__()
        self.convtr = StreamingConvTranspose1d(dim, dim, 2 * stride, stride, groups=dim, bias=False)


class _Quantizer(nn.Module):
    def __init__(self, dimension: int, output_dimension: int):
        super().__init__()
        self.output_proj = nn.Conv1d(dimension, output_dimension, 1, bias=False)


class Mimi(nn.Module):
    def __init__(self, cfg: MimiConfig, backend: Backend = TORCH):
        """`backend` serves the decoder transformer (every frame); the encoder side, used
        once per cloned voice, stays in PyTorch."""
        super().__init__()
        self.cfg = cfg
        stride = cfg.steps_per_frame  # 16 SEANet steps per latent frame
        decoder_seanet = cfg.decoder_seanet_config
        self.encoder = SEANetEncoder(cfg.seanet)
        self.decoder = SEANetDecoder(decoder_seanet, backend)
        self.encoder_transformer = _CodecTransformer(cfg.transformer)
        self.decoder_transformer = _CodecTransformer(cfg.decoder_transformer_config, backend)
        self.downsample = _Downsample(cfg.seanet.dimension, cfg.inner_dim, stride)
        self.upsample = _Upsample(decoder_seanet.dimension, stride)
        self.quantizer = _Quantizer(cfg.quantizer.dimension, cfg.quantizer.output_dimension)

    def prepare(self) -> None:
        """Hands the decoder transformer's and decoder's weights to the backend chosen at
        construction."""
        self.decoder_transformer.transformer.prepare()
        self.decoder.prepare()

    def init_decoder_state(self, batch: int = 1) -> MimiDecoderState:
        return MimiDecoderState(
            upsample=self.upsample.convtr.init_state(batch),
            transformer=self.decoder_transformer.transformer.init_state(batch),
            seanet=self.decoder.init_state(batch),
        )

    def decode(self, latents: torch.Tensor, state: MimiDecoderState) -> torch.Tensor:
        """De-normalized latents (B, T, 32) -> PCM (B, 1, T * 1920); advances the state."""
        x = self.quantizer.output_proj(latents.transpose(1, 2))  # (B, C, T)
        x = self.upsample.convtr(x, state.upsample)  # (B, C, 16 T)
        x = self.decoder_transformer(x, state.transformer)
        state.frames += latents.shape[1]
        return self.decoder(x, state.seanet)  # (B, 1, 1920 T)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, 1, N) at 24 kHz -> raw latents (B, ceil(N / 1920), inner_dim).

        The audio is right-padded with zeros to a whole number of frames first.
        """
        frame = self.cfg.samples_per_frame
        pad = -audio.shape[-1] % frame
        x = F.pad(audio, (0, pad))
        x = self.encoder(x)  # (B, C, N / hop), from a zero state
        x = self.encoder_transformer(x, self.encoder_transformer.transformer.init_state(x.shape[0]))
        x = self.downsample.conv(x, ConvState())  # (B, inner_dim, T)
        return x.transpose(1, 2)
