"""PCM helpers and audio files: the one module that imports the Rust extension `voxlet._native`.

Every resample, ring and PCM conversion in voxlet goes through here; nothing loops per sample
in Python.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet._native import (
    AudioError,
    PcmPipeline,
    StreamResampler,
    WavWriter,
    f32_to_bytes,
    f32_to_bytes_into,
    f32_to_i16,
    i16_to_f32,
    read_wav,
    time_stretch,
    wav_header,
)
from voxlet._native import resample as _resample_interleaved

__all__ = [
    "AudioError",
    "PcmPipeline",
    "StreamResampler",
    "WavWriter",
    "f32_to_bytes",
    "f32_to_bytes_into",
    "f32_to_i16",
    "i16_to_f32",
    "read_audio",
    "read_wav",
    "resample",
    "time_stretch",
    "wav_header",
]


def resample(
    audio: npt.NDArray[np.float32], input_rate_hz: int, output_rate_hz: int
) -> npt.NDArray[np.float32]:
    """Resamples (N,) or (N, C) float audio; returns the same layout, ceil(N * ratio) frames."""
    x = np.ascontiguousarray(audio, dtype=np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    out = _resample_interleaved(x.reshape(-1), input_rate_hz, output_rate_hz, channels)
    return out if x.ndim == 1 else out.reshape(-1, channels)


def read_audio(path: str | Path) -> tuple[npt.NDArray[np.float32], int]:
    """Reads an audio file -> (samples float32 (N, C), sample rate in Hz).

    WAV (integer PCM of any width, float, extensible) is read in Rust; other formats (FLAC,
    OGG, MP3, ...) need the optional `soundfile` package.
    """
    p = Path(path)
    with p.open("rb") as f:
        is_wav = f.read(12)[8:12] == b"WAVE"
    if is_wav:
        return read_wav(str(p))
    try:
        import soundfile
    except ImportError as e:
        raise AudioError(f"{p}: not a WAV file; install soundfile to read other formats") from e
    try:
        data, rate = soundfile.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioError(f"cannot read audio file {p}: {e}") from e
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)
