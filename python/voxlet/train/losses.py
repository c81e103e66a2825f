"""Reconstruction losses for the codec: multi-resolution STFT (spectral convergence + log
magnitude) and log-mel L1; the VAE's KL term. Batched tensor code, no per-item loops."""

from __future__ import annotations

import math
from functools import cache

import torch

RESOLUTIONS = (2048, 1024, 512, 256, 128)
_EPS = 1e-5


@cache
def _window(n_fft: int, device: str) -> torch.Tensor:
    return torch.hann_window(n_fft, device=device)


def magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """(B, N) -> (B, n_fft / 2 + 1, frames) STFT magnitude, hop n_fft / 4."""
    spec = torch.stft(
        x, n_fft, n_fft // 4, window=_window(n_fft, str(x.device)), return_complex=True
    )
    return spec.abs().clamp_min(_EPS)


def stft_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Output y against target x, both (B, N): the mean over resolutions of spectral
    convergence plus mean |log |Y| - log |X||."""
    total = y.new_zeros(())
    for n_fft in RESOLUTIONS:
        my, mx = magnitude(y, n_fft), magnitude(x, n_fft)
        convergence = torch.linalg.norm(my - mx) / torch.linalg.norm(mx)
        total = total + convergence + (my.log() - mx.log()).abs().mean()
    return total / len(RESOLUTIONS)


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


@cache
def mel_filters(n_fft: int, n_mels: int, rate_hz: int, device: str) -> torch.Tensor:
    """(n_mels, n_fft / 2 + 1) triangular filters on the HTK mel scale, 0 Hz to Nyquist."""
    mels = torch.linspace(0.0, _hz_to_mel(rate_hz / 2), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    bins = torch.linspace(0.0, rate_hz / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float().to(device)


def log_mel(x: torch.Tensor, rate_hz: int = 24000, n_fft: int = 1024, n_mels: int = 80):
    """(B, N) -> (B, n_mels, frames) log of mel-weighted magnitudes."""
    fb = mel_filters(n_fft, n_mels, rate_hz, str(x.device))
    return (fb @ magnitude(x, n_fft)).clamp_min(_EPS).log()


def mel_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (log_mel(y) - log_mel(x)).abs().mean()


def kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, e^logvar) || N(0, 1)) per latent value, averaged."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
