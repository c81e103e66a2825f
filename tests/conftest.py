"""Shared test fixtures: the tiny random-weight model and reference goldens from ../shared.

Missing fixtures are an error, never a skip: the suite cannot vouch for anything without them.
"""

# ruff: noqa: E402  (voxlet.tune_process() runs before torch is imported, as in the command)
from __future__ import annotations

import threading

import voxlet

voxlet.tune_process()

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from voxlet import TTS

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VOXLET_SHARED", ROOT.parent / "shared")).resolve()
FIXTURES = SHARED / "fixtures"

# tests/torch_free also runs in an install without PyTorch: torch is imported where present
if importlib.util.find_spec("torch") is not None:
    import torch

    torch.set_num_threads(1)  # the goldens were made with one thread

# Hypothesis: "ci" for the test run, "fuzz" (many more examples) under `make fuzz`; a test's own
# @settings still win.
_FIXTURES_OK = [HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=_FIXTURES_OK)
settings.register_profile(
    "fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"test fixture {path} is missing: put the shared/ folder beside the checkout "
            "or set VOXLET_SHARED"
        )
    return path


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """Signal-to-noise ratio of `other` against `reference`, in dB (inf where they are equal)."""
    noise = ((reference - other) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((reference**2).sum() / noise))


def load_tiny(
    weights: str = "tiny_model.safetensors",
    precision: str = "fp32",
    encoder: bool = False,
    backend: str = "native",
) -> TTS:
    """The tiny model on the PyTorch path with voxlet's kernels (the tests of the PyTorch
    model; tests/torch_free/ has the torch-free backend's); `encoder`: with the voice-cloning
    encoder read back at once (a load releases it until the first cloning), for tests that
    call it directly."""
    tts = TTS.load(
        config=fixture_path("tiny_config.yaml"),
        weights=fixture_path(weights),
        tokenizer=fixture_path("tokenizer.model"),
        precision=precision,
        backend=backend,
    )
    if encoder:
        from voxlet.model.weights import load_cloning_weights

        load_cloning_weights(tts.network, fixture_path(weights))
    return tts


@pytest.fixture(scope="session")
def tiny_tts() -> TTS:
    return load_tiny()


@pytest.fixture(scope="session")
def int8_tts() -> TTS:
    return load_tiny(precision="int8")


@pytest.fixture(scope="session")
def golden() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(fixture_path("tiny_golden.safetensors")))


# A loaded torch-free model's background thread (moving its weights onto huge pages, at the
# lowest priority, ending by itself): the model's, not a stream's, so not a leak.
MODEL_THREADS = ("voxlet-huge-pages",)


def stream_threads() -> list[str]:
    """voxlet's threads that belong to streams, engines and servers (the no-leak checks)."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("voxlet-") and t.name not in MODEL_THREADS
    ]
