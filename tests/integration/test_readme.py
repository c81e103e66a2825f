"""The README's examples run as written, and its two set-up commands are the ones CI uses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, fixture_path

README = (ROOT / "README.md").read_text()
TESTED = re.findall(r"<!-- tested -->\n```(\w+)\n(.*?)```", README, re.S)
FILES = ("tiny_config.yaml", "tiny_model.safetensors", "tokenizer.model", "prompt.wav")


def _folder(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copy(fixture_path(name), tmp_path / name)
    return tmp_path


def test_tested_blocks_exist():
    assert sorted(kind for kind, _ in TESTED) == ["python", "python", "sh"]


def test_readme_python_example(tmp_path, monkeypatch):
    monkeypatch.chdir(_folder(tmp_path))
    for kind, block in TESTED:
        if kind == "python":
            exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "voice.safetensors").is_file()


def test_readme_cli_example(tmp_path):
    folder = _folder(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for kind, block in TESTED:
        if kind != "sh":
            continue
        for line in block.strip().splitlines():
            done = subprocess.run(
                ["bash", "-c", line + " -q" if "> " not in line else line],
                cwd=folder,
                env=env,
                capture_output=True,
                timeout=120,
            )
            assert done.returncode == 0, (line, done.stderr.decode())
    for name in ("speaker.safetensors", "out.wav", "out48.wav", "out.f32"):
        assert (folder / name).stat().st_size > 1000, name


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [c.strip() for c in commands] == ['make say TEXT="Hello from voxlet."', "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
