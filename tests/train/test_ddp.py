"""Data-parallel training: two CPU processes under torchrun (gloo) train one run together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.test_codec import TOY, config, toy_corpus  # noqa: F401 (a fixture)
from voxlet.train import codec


def torchrun(corpus: Path, run: Path, steps: int, processes: int = 2):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**TOY, "steps": steps}.items()]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={processes}",
        "--standalone",
        "-m",
        "voxlet",
        "train",
        "codec",
        f"--data={corpus}",
        f"--run-dir={run}",
        f"--config={config()}",
        "--threads=1",
        *flags,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=180)


@pytest.mark.slow
def test_two_processes_train_resume_and_refuse_a_different_count(toy_corpus, tmp_path):  # noqa: F811
    run = tmp_path / "ddp"
    r = torchrun(toy_corpus, run, steps=2)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stderr.count(b"voxlet: ") == 1  # the summary, from process 0 only
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 and len(state["random"]) == 2
    # each process drew its own crops: their data generators have moved apart
    assert state["random"][0]["numpy"] != state["random"][1]["numpy"]
    # a batch of 2 x 2 processes: twice the audio of one process per step
    assert state["seen_s"] == pytest.approx(2 * 2 * 2 * 3 * 1920 / 24000)
    r = torchrun(toy_corpus, run, steps=3)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 3
    with pytest.raises(RuntimeError, match="saved by 2 processes, resumed with 1"):
        codec.train(toy_corpus, run, None, {"steps": 4})
