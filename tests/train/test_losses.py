"""The codec's losses: zero where they should be, and ordered by how wrong the output is."""

from __future__ import annotations

import torch

from voxlet.train import losses


def test_reconstruction_losses_are_zero_for_a_copy_and_grow_with_the_error():
    torch.manual_seed(0)
    x = 0.1 * torch.randn(2, 9600)
    assert float(losses.stft_loss(x, x)) == 0.0
    assert float(losses.mel_loss(x, x)) == 0.0
    small = x + 0.01 * torch.randn_like(x)
    large = x + 0.1 * torch.randn_like(x)
    assert 0 < float(losses.stft_loss(small, x)) < float(losses.stft_loss(large, x))
    assert 0 < float(losses.mel_loss(small, x)) < float(losses.mel_loss(large, x))


def test_mel_filters_cover_the_spectrum_in_order():
    fb = losses.mel_filters(1024, 80, 24000, "cpu")
    assert fb.shape == (80, 513) and float(fb.min()) >= 0.0
    peaks = fb.argmax(dim=1)
    assert bool((peaks[1:] >= peaks[:-1]).all())  # centres rise with the band
    assert bool((fb.sum(dim=0)[5:-5] > 0).all())  # no gap between bands


def test_kl_is_zero_for_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 32, 4)
    assert float(losses.kl(zeros, zeros)) == 0.0
    assert float(losses.kl(zeros + 1, zeros)) == 0.5
    assert float(losses.kl(zeros, zeros - 2)) > 0
