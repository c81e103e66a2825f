"""voxlet with PyTorch unavailable: a process whose import system refuses `torch` (as an install
without it would) loads a model, clones a voice, speaks the goldens and runs `voxlet say`,
never importing torch; the torch backends then say which extra they need."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import fixture_path

# installed before anything imports voxlet: `import torch` fails as if it were not installed
_NO_TORCH = """
import importlib.abc, sys

class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
"""


def _run(body: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = _NO_TORCH + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )


def test_the_api_speaks_the_goldens_without_torch():
    done = _run(
        """
        import sys
        import numpy as np
        from safetensors.numpy import load_file
        from voxlet import TTS, GenerationOptions
        from voxlet.errors import ConfigError

        config, voice_file, prompt, goldens = sys.argv[1:5]
        g = load_file(goldens)
        forced = GenerationOptions(
            temperature=0.0, eos_threshold=1e9, max_frames=12, on_no_eos="ignore"
        )
        tts = TTS.load(config=config)  # the default backend, with no torch to run it
        text = "Hello world. This is a test."
        for voice in (voice_file, prompt):
            audio = tts.synthesize(text, voice, forced)
            np.testing.assert_allclose(audio, g["audio_generate_api"], atol=2e-5, rtol=2e-5)
        assert "torch" not in sys.modules
        try:
            TTS.load(config=config, backend="torch")
        except ConfigError as e:
            assert "needs PyTorch" in str(e) and "torch-free" in str(e), e
        else:
            raise AssertionError("the torch backend loaded without torch")
        print("spoke", type(tts.model).__name__)
        """,
        str(fixture_path("tiny_config.yaml")),
        str(fixture_path("tiny_voice.safetensors")),
        str(fixture_path("prompt.wav")),
        str(fixture_path("tiny_golden.safetensors")),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "spoke NativeSpeech"


def test_voxlet_say_runs_without_torch(tmp_path):
    out = tmp_path / "out.wav"
    done = _run(
        """
        import sys
        from voxlet.cli import main

        code = main(sys.argv[1:])
        assert "torch" not in sys.modules
        sys.exit(code)
        """,
        "say",
        "Hello world.",
        "--config",
        str(fixture_path("small/small_config.yaml")),
        "--voice",
        str(fixture_path("small/small_voice.safetensors")),
        "--max-frames",
        "8",
        "--on-no-eos",
        "ignore",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size == 44 + 8 * 1920 * 2  # a 16-bit WAV of the 8 frames
