"""The torch-free Mimi decoder's int8 SEANet: in the english layout the convolutions whose
outputs sum at least INT8_MIN_DEPTH terms go int8 (the others, and every small layout's, stay
float), and the int8 decoder stays close to the float one on the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from voxlet._native import (
    ConvTransposeWeights,
    ConvWeights,
    ResidualWeights,
    SeanetDecoder,
    SeanetState,
)
from voxlet.native.layers import INT8_MIN_DEPTH
from voxlet.native.mimi import seanet_stages
from voxlet.registry import official_config


class RandomWeights:
    """Stands in for a checkpoint: `take` gives seeded weights of any shape, scaled to keep
    activations of order one through the decoder."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        fan_in = shape[0] if key.endswith("convtr.weight") else int(np.prod(shape[1:]))
        scale = 0.05 if key.endswith("bias") else 1.0 / np.sqrt(max(fan_in, 1))
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)


def _int8_flags(stages: list) -> list[bool]:
    flags: list[bool] = []
    for s in stages:
        if isinstance(s, ResidualWeights):
            flags += list(s.int8)
        elif isinstance(s, ConvWeights | ConvTransposeWeights):
            flags.append(s.int8)
    return flags


def test_the_english_decoders_deep_convolutions_go_int8_and_stay_close():
    cfg = official_config("english").mimi.decoder_seanet_config
    fp32 = seanet_stages(RandomWeights(), "d", cfg)  # type: ignore[arg-type]
    int8 = seanet_stages(RandomWeights(), "d", cfg, int8=True)  # type: ignore[arg-type]
    assert not any(_int8_flags(fp32))
    # the first conv (512 x 7 terms), the transposed conv over 512 channels and the residual
    # k-3 conv over 256 (768 terms); not the narrower ones, the 1x1s or the last conv
    flags = _int8_flags(int8)
    assert flags == [True, True, True] + [False] * 8, flags
    x = np.random.default_rng(1).standard_normal((32, cfg.dimension)).astype(np.float32)
    a, b = SeanetDecoder(fp32), SeanetDecoder(int8)
    ya, yb = a.forward(x, SeanetState(a)), b.forward(x, SeanetState(b))
    assert ya.shape == yb.shape and np.isfinite(yb).all() and not np.array_equal(ya, yb)
    snr = 10 * np.log10(np.sum(ya.astype(np.float64) ** 2) / np.sum((ya - yb) ** 2.0))
    assert 20 < snr < 60, snr


@pytest.mark.parametrize("model", ["english_2m", "english_7m", "english_18m"])
def test_the_small_layouts_decoders_stay_float(model):
    cfg = official_config(model).mimi.decoder_seanet_config
    stages = seanet_stages(RandomWeights(), "d", cfg, int8=True)  # type: ignore[arg-type]
    assert cfg.n_filters * 2 ** len(cfg.ratios) < INT8_MIN_DEPTH
    assert not any(_int8_flags(stages))
