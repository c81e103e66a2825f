"""The built wheel works on its own: installed into a fresh venv, the CLI runs end to end.

`maturin build --release` makes the wheel; it is installed without dependencies into a new venv
that borrows only the third-party packages (torch, numpy, ...) of the test environment.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, fixture_path


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    maturin = Path(sys.executable).with_name("maturin")
    subprocess.run(
        [str(maturin), "build", "--release", "-q", "-o", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=900,
    )
    (wheel,) = dist.glob("voxlet-*.whl")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Third-party dependencies come from the test environment; voxlet itself only from the wheel.
    (Path(site.strip()) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def voxlet(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "voxlet"), *args], capture_output=True, timeout=120, cwd=cwd
    )


def test_wheel_cli_end_to_end(wheel_venv, tmp_path):
    where = subprocess.run(
        [
            str(wheel_venv / "bin" / "python"),
            "-c",
            "import voxlet, voxlet._native; print(voxlet.__file__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    ).stdout
    assert str(wheel_venv) in where  # not the source tree
    model = ["--config", str(fixture_path("tiny_config.yaml"))]
    forced = ["--temperature", "0", "--max-frames", "6", "--on-no-eos", "ignore", "-q"]
    voice = tmp_path / "voice.safetensors"
    r = voxlet(
        wheel_venv,
        "export-voice",
        str(fixture_path("prompt.wav")),
        str(voice),
        *model,
        "-q",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr.decode()
    say = ["say", "Hello world.", *model, "--voice", str(voice), *forced]
    r = voxlet(wheel_venv, *say, "-o", "out.wav", cwd=tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    with wave.open(str(tmp_path / "out.wav")) as w:
        wav = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    raw = voxlet(wheel_venv, *say, "-o", "-", "--format", "s16le", cwd=tmp_path)
    assert raw.returncode == 0 and len(wav) == 6 * 1920
    assert np.array_equal(np.frombuffer(raw.stdout, "<i2"), wav)
    assert voxlet(wheel_venv, "--version", cwd=tmp_path).stdout.startswith(b"voxlet ")
