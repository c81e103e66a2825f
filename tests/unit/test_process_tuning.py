"""voxlet's process-wide settings: made by an explicit call (the CLI's first), never at import,
never over a user's own choice; and the kernels' helper threads work again after a fork."""

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


TUNED = "import voxlet; voxlet.tune_process()"


def test_importing_voxlet_changes_nothing_in_the_process():
    assert _env_after_import("import voxlet, voxlet.tts, voxlet.cli") == "None"


def test_openmp_workers_sleep_unless_the_user_chose_or_torch_came_first():
    assert _env_after_import(TUNED) == "PASSIVE"
    assert _env_after_import(TUNED, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
    assert _env_after_import("import torch; " + TUNED) == "None"  # too late to matter: untouched


def test_the_command_tunes_the_process_before_anything_else(monkeypatch):
    import voxlet._entry
    import voxlet.cli

    calls = []
    monkeypatch.setattr(_process, "tune_process", lambda: calls.append("tune"))
    monkeypatch.setattr(voxlet.cli, "main", lambda: calls.append("cli") or 0)
    assert voxlet._entry.main() == 0
    assert calls == ["tune", "cli"]


FORK = """
import os, signal, numpy as np
from voxlet._native import F32Matrix, Int8Matrix
x = np.random.default_rng(0).random((64, 1024), dtype=np.float32)
w = np.random.default_rng(1).random((1024, 1024), dtype=np.float32)
matrices = [Int8Matrix(w), F32Matrix(w)]
before = [m.apply(x, threads=2) for m in matrices]  # the helper threads start here
pid = os.fork()
if pid == 0:  # the child has none of them
    signal.alarm(10)
    after = [m.apply(x, threads=2) for m in matrices]
    os._exit(0 if all(np.array_equal(a, b) for a, b in zip(before, after)) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_the_helper_threads_survive_fork():
    out = subprocess.run([sys.executable, "-c", FORK], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "0", out.stderr  # -14: the child hung on its parent's threads


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
