"""Running the `voxlet` command in a subprocess on the tiny fixture model, and reading its WAVs."""

from __future__ import annotations

import os
import subprocess
import sys
import wave

import numpy as np

from tests.conftest import fixture_path

VOXLET = [sys.executable, "-m", "voxlet"]
MODEL = [
    "--config",
    str(fixture_path("tiny_config.yaml")),
    "--voice",
    str(fixture_path("tiny_voice.safetensors")),
]


def run_voxlet(
    *args: str, stdin: bytes | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*VOXLET, *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def read_wav_i16(path) -> tuple[np.ndarray, int]:
    """Mono 16-bit WAV -> (samples int16, sample rate)."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()
