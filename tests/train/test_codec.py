"""Codec training on a toy corpus: it learns, it resumes bit for bit, and the CLI drives it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES, fixture_path
from voxlet.train import codec
from voxlet.train.dataset import CorpusWriter

TOY = {"batch": 2, "crop_frames": 3, "warmup": 2, "log_every": 1, "val_items": 2, "lr": 3e-3}


@pytest.fixture(scope="module")
def toy_corpus(tmp_path_factory):
    """Twelve 0.5 s harmonic tones at different pitches (a few as val)."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    t = np.arange(12000) / 24000
    with CorpusWriter(folder) as w:
        for i in range(12):
            f0 = rng.uniform(100, 300)
            audio = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
            split = "val" if i < 2 else "train"
            w.add(f"u{i}", f"Tone {i}.", split, "test", (0.1 * audio).astype(np.float32))
    return folder


def config():
    return fixture_path("small/small_config.yaml")


def test_training_lowers_the_loss(toy_corpus, tmp_path):
    first = codec.train(toy_corpus, tmp_path / "a", config(), {**TOY, "steps": 1})
    last = codec.train(toy_corpus, tmp_path / "b", config(), {**TOY, "steps": 40})
    assert last["val_mel"] < 0.8 * first["val_mel"]
    assert {"stft", "mel", "kl", "latent_std", "posterior_sigma"} <= set(last)


def test_a_resumed_run_reproduces_an_uninterrupted_one(toy_corpus, tmp_path):
    settings = {**TOY, "steps": 6, "save_every": 3}
    codec.train(toy_corpus, tmp_path / "straight", config(), settings)
    codec.train(toy_corpus, tmp_path / "resumed", config(), {**settings, "steps": 3})
    codec.train(toy_corpus, tmp_path / "resumed", None, {"steps": 6})
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6  # one per step: steps 1-3, then 4-6 after the resume


def test_resuming_with_another_config_or_seed_is_refused(toy_corpus, tmp_path):
    codec.train(toy_corpus, tmp_path / "r", config(), {**TOY, "steps": 1})
    with pytest.raises(ValueError, match="differs from the config"):
        codec.train(toy_corpus, tmp_path / "r", FIXTURES / "tiny_config.yaml", {"steps": 2})
    with pytest.raises(ValueError, match="seed"):
        codec.train(toy_corpus, tmp_path / "r", None, {"steps": 2, "seed": 5})


def test_cli_trains_and_reports_progress_on_stderr(toy_corpus, tmp_path):
    run = tmp_path / "cli"
    args = ["--data", str(toy_corpus), "--run-dir", str(run), "--config", str(config())]
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**TOY, "steps": 2}.items()]
    r = subprocess.run(
        [sys.executable, "-m", "voxlet", "train", "codec", *args, *flags, "--threads", "1"],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b""
    assert b"codec 2/2" in r.stderr
    assert (run / "checkpoint.pt").is_file() and (run / "config.yaml").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
