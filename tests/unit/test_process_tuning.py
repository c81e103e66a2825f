"""voxlet's process-wide settings: made at import, never over a user's own choice."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from voxlet import _process


def _env_after_import(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_openmp_workers_sleep_unless_the_user_chose_or_torch_came_first():
    assert _env_after_import("import voxlet") == "PASSIVE"
    assert _env_after_import("import voxlet", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
    assert _env_after_import("import torch, voxlet") == "None"  # too late to matter: untouched


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_malloc_arenas_are_capped_unless_the_user_chose(monkeypatch):
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())  # imported when needed
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    _process.tune_process()
    assert calls == [(-8, _process.MALLOC_ARENAS)]  # M_ARENA_MAX
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    _process.tune_process()
    assert len(calls) == 1


def test_loading_and_speaking_import_no_compiler_stack():
    """Random init on the meta device (nn.Embedding's normal_) imports torch._dynamo, sympy and
    triton: ~76 MB resident and a slower cold start, for weights the checkpoint replaces."""
    from tests.conftest import fixture_path

    code = f"""
import sys, voxlet
from voxlet import TTS, GenerationOptions
tts = TTS.load(config={str(fixture_path("tiny_config.yaml"))!r},
               weights={str(fixture_path("tiny_model.safetensors"))!r},
               tokenizer={str(fixture_path("tokenizer.model"))!r}, precision="int8")
voice = tts.voice({str(fixture_path("tiny_voice.safetensors"))!r})
tts.synthesize("Hello.", voice, GenerationOptions(max_frames=3, on_no_eos="ignore"))
print(sorted(m for m in ("torch._dynamo", "sympy", "triton") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
