"""Audio I/O and PCM helpers: the one module that imports the Rust extension `voxlet._audio`."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voxlet._audio import AudioError, f32_to_i16

__all__ = ["AudioError", "f32_to_i16", "read_audio"]


def read_audio(path: str | Path) -> tuple[npt.NDArray[np.float32], int]:
    """Reads an audio file -> (samples float32 (N, C), sample rate in Hz).

    WAV PCM16 is read with the standard library; other formats need soundfile.
    """
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            if w.getsampwidth() == 2:
                raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
                data = raw.reshape(-1, w.getnchannels()).astype(np.float32) / 32768.0
                return data, w.getframerate()
    except (wave.Error, EOFError):
        pass
    try:
        import soundfile
    except ImportError as e:
        raise AudioError(f"{p}: not a PCM16 WAV; install soundfile to read other formats") from e
    try:
        data, rate = soundfile.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioError(f"cannot read audio file {p}: {e}") from e
    return np.asarray(data, dtype=np.float32), int(rate)
