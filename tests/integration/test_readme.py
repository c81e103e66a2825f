"""The README's Python example runs as written, in a folder holding the fixture files."""

from __future__ import annotations

import re
import shutil

from tests.conftest import ROOT, fixture_path


def test_readme_python_example(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for name in ("tiny_config.yaml", "tiny_model.safetensors", "tokenizer.model", "prompt.wav"):
        shutil.copy(fixture_path(name), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "voice.safetensors").is_file()
