"""Mimi's decoder without PyTorch: de-normalized latents -> 24 kHz samples, streaming, from the
checkpoint's own keys (`mimi.quantizer`, `mimi.upsample`, `mimi.decoder_transformer`,
`mimi.decoder`).

The same stages as `voxlet.model.mimi.Mimi.decode`: the quantizer's output projection (a 1x1
convolution), the depthwise transposed upsample (16 steps a frame), the decoder transformer
over a ring of `context` positions, the SEANet decoder, each in voxlet's kernels with its state
carried in `DecoderState`, so a stream cut into calls anywhere gives the bits of one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxlet._native import (
    ConvTransposeWeights,
    ConvWeights,
    ResidualWeights,
    SeanetDecoder,
    SeanetState,
    overlap_add,
)
from voxlet.config import MimiConfig, SEANetConfig
from voxlet.native.checkpoint import Checkpoint
from voxlet.native.layers import (
    INT8_MIN_DEPTH,
    Array,
    Caches,
    Stack,
    StackShape,
    apply,
    conv_as_linear,
)


def seanet_stages(ck: Checkpoint, prefix: str, cfg: SEANetConfig, int8: bool = False) -> list:
    """The decoder's stages in the checkpoint's `model.{i}` order: a convolution, then per
    ratio an ELU, a transposed convolution and the residual blocks, then an ELU and the last
    convolution. `int8`: those whose outputs each sum at least INT8_MIN_DEPTH terms go int8
    (english: the first convolution, the first transposed one and the residual k-3
    convolution after it; the small layouts' narrower decoders stay float)."""

    def _conv(key: str, c_out: int, c_in: int, kernel: int, dilation: int = 1) -> ConvWeights:
        w = np.ascontiguousarray(ck.take(f"{key}.weight", (c_out, c_in, kernel)))
        b = ck.take(f"{key}.bias", (c_out,)).copy()
        return ConvWeights(w, b, dilation, int8 and c_in * kernel >= INT8_MIN_DEPTH)

    width = cfg.n_filters * 2 ** len(cfg.ratios)
    stages: list = [_conv(f"{prefix}.model.0.conv", width, cfg.dimension, cfg.kernel_size)]
    for ratio in cfg.ratios:
        i = len(stages)
        w = ck.take(f"{prefix}.model.{i + 1}.convtr.weight", (width, width // 2, 2 * ratio))
        b = ck.take(f"{prefix}.model.{i + 1}.convtr.bias", (width // 2,)).copy()
        quantized = int8 and width >= INT8_MIN_DEPTH
        stages += ["elu", ConvTransposeWeights(np.ascontiguousarray(w), b, ratio, quantized)]
        width //= 2
        hidden = width // cfg.compress
        for j in range(cfg.n_residual_layers):
            p = f"{prefix}.model.{len(stages)}.block"
            stages.append(
                ResidualWeights(
                    _conv(
                        f"{p}.1.conv",
                        hidden,
                        width,
                        cfg.residual_kernel_size,
                        cfg.dilation_base**j,
                    ),
                    _conv(f"{p}.3.conv", width, hidden, 1),
                )
            )
    last = f"{prefix}.model.{len(stages) + 1}.conv"
    stages += ["elu", _conv(last, cfg.channels, width, cfg.last_kernel_size)]
    return stages


@dataclass(slots=True)
class DecoderState:
    """One stream's carried decoder state."""

    upsample: Array  # (1, C, stride): the transposed upsample's partial outputs
    transformer: Caches
    seanet: SeanetState
    frames: int = 0


class NativeMimiDecoder:
    def __init__(self, cfg: MimiConfig, ck: Checkpoint, int8: bool = False):
        self.cfg = cfg
        seanet = cfg.decoder_seanet_config
        tr = cfg.decoder_transformer_config
        c = self.width = seanet.dimension
        self.stride = cfg.steps_per_frame
        self.quantizer = conv_as_linear(
            ck, "mimi.quantizer.output_proj", c, cfg.quantizer.dimension
        )
        up = ck.take("mimi.upsample.convtr.convtr.weight", (c, 1, 2 * self.stride))
        self.upsample = np.ascontiguousarray(up.reshape(1, 1, c, 2 * self.stride))
        self.shape = StackShape.codec(tr)
        quantized = int8 and tr.d_model >= INT8_MIN_DEPTH
        self.transformer = Stack(ck, "mimi.decoder_transformer.transformer", self.shape, quantized)
        self.seanet = SeanetDecoder(seanet_stages(ck, "mimi.decoder", seanet, int8))

    def init_state(self) -> DecoderState:
        return DecoderState(
            upsample=np.zeros((1, self.width, self.stride), np.float32),
            transformer=Caches.empty(self.shape, self.shape.context or 0, 0.0),
            seanet=SeanetState(self.seanet),
        )

    def decode(self, latents: Array, state: DecoderState, threads: int = 1) -> Array:
        """De-normalized latents (T, 32) -> T * 1920 samples (float32); advances the state."""
        return self.seanet.forward(self._front(latents, state, threads), state.seanet)

    def decode_batch(self, jobs: list[tuple[Array, DecoderState]], threads: int = 1) -> list[Array]:
        """Several streams at once, each (latents, its state): the samples `decode` gives each
        alone. The SEANet decoder, most of the work, shares the streams out among `threads`."""
        rows = [self._front(latents, state, threads) for latents, state in jobs]
        return self.seanet.forward_batch(rows, [state.seanet for _, state in jobs], threads)

    def _front(self, latents: Array, state: DecoderState, threads: int) -> Array:
        """The stages before the SEANet decoder: latents (T, 32) -> its input rows (16 T, C)."""
        x = apply(self.quantizer, latents)  # (T, C)
        taps = np.ascontiguousarray(x[None, :, :, None] * self.upsample)  # (1, T, C, 2 stride)
        up, state.upsample = overlap_add(taps, None, state.upsample)  # (1, C, stride T)
        rows = self.transformer.forward(up[0].T, state.transformer, threads)  # (stride T, C)
        state.frames += latents.shape[0]
        return rows
