"""Tracebacks turned into one-line typed errors (issue 13, class 5): lone surrogates in text, a
binary file given as config, out-of-range seeds, degenerate configs, unknown model names in
every command, a closed stdout, Ctrl-C while starting; and messages that say what to do
(class 6): a local model without voices, `--help` defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import fixture_path
from tests.hostile.test_output_files import one_line_error
from tests.integration.cli_helpers import MODEL, run_voxlet
from tests.unit.test_config import assert_config_refused
from voxlet import GenerationOptions
from voxlet.config import ModelConfig
from voxlet.errors import ConfigError, TextError


def test_a_lone_surrogate_in_text_is_a_text_error(tiny_tts):
    with pytest.raises(TextError, match=r"invalid character U\+D800 at position 3"):
        tiny_tts.plans("hi \ud800 there", GenerationOptions())


def test_a_binary_file_as_config_names_the_file(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match=rf"{binary}: not a YAML text file"):
        ModelConfig.load(binary)
    done = run_voxlet("say", "Hi.", "--config", str(binary), "-o", str(tmp_path / "o.wav"))
    one_line_error(done, str(binary).encode())


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64])
def test_an_out_of_range_seed_is_refused(seed, tmp_path):
    with pytest.raises(ConfigError, match="seed: must be an integer from 0 to 2\\*\\*63 - 1"):
        GenerationOptions(seed=seed)
    done = run_voxlet("say", "Hi.", *MODEL, "-o", str(tmp_path / "o.wav"), "--seed", str(seed))
    one_line_error(done, b"seed: must be an integer")


@pytest.mark.parametrize(
    "path,value,message",
    [
        (("flow_lm", "transformer", "num_heads"), 0, "flow_lm.transformer.num_heads: must be"),
        (("mimi", "transformer", "num_heads"), 0, "mimi.transformer: d_model, heads"),
        (("flow_lm", "flow", "depth"), 0, "flow_lm.flow.depth: must be positive"),
    ],
)
def test_a_degenerate_config_is_refused_naming_the_key(path, value, message):
    data = yaml.safe_load(fixture_path("tiny_config.yaml").read_text())
    assert_config_refused(data, path, value, message)


@pytest.mark.parametrize(
    "command",
    [
        ["say", "Hi.", "-o", "o.wav"],
        ["voices"],
        ["download"],
        ["export-voice", str(fixture_path("prompt.wav")), "v.safetensors"],
    ],
)
def test_an_unknown_model_name_is_one_line_in_every_command(command, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "voxlet", *command, "--model", "nosuch"],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    one_line_error(done, b"unknown model 'nosuch'; official models: dutch")
    assert list(tmp_path.iterdir()) == []


def test_a_closed_stdout_is_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "voxlet", "say", "Hi.", *MODEL, "-o", "-", "--max-frames", "2"],
        stderr=subprocess.PIPE,
        timeout=120,
        preexec_fn=lambda: os.close(1),  # the child starts with no fd 1
    )
    one_line_error(done, b"-o -: standard output is closed")


def test_a_local_model_without_voices_says_what_to_pass(tmp_path):
    config = ["--config", str(fixture_path("tiny_config.yaml"))]
    done = run_voxlet("say", "Hi.", *config, "-o", str(tmp_path / "o.wav"))
    one_line_error(done, b"model 'tiny_config' has no default voice: pass a voice")
    done = run_voxlet("say", "Hi.", *config, "--voice", "alba", "-o", str(tmp_path / "o.wav"))
    one_line_error(done, b"voice 'alba' is a predefined voice of the official models")
    assert list(tmp_path.iterdir()) == []


def test_help_states_each_default_once():
    for command in ("say", "export-voice", "voices", "download"):
        text = run_voxlet(command, "--help").stdout.decode()
        assert "(default: None)" not in text
        for line in text.split("\n  -"):
            assert line.count("default") <= 1, line


def _wait_until_voxlet_handles(pid: int) -> None:
    """Until the child runs voxlet's first line, which catches SIGINT, SIGTERM and SIGHUP
    together: SIGTERM caught (SigCgt in /proc) marks it, as Python catches only SIGINT by
    itself. Before that the interpreter is starting (loading its libraries and `site`, under
    load more than 0.1 s): the kernel's default action or Python's own KeyboardInterrupt applies,
    which no program can change."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as f:
            caught = next(line for line in f if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} never caught SIGTERM")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("after_s", [0.1, 0.5, 1.5])  # importing, loading torch, speaking
def test_a_signal_at_any_point_exits_quietly(after_s, sig):
    long = ["--max-frames", "3000", "--eos-threshold", "1e9", "--on-no-eos", "ignore"]
    text = " ".join(["Hi there."] * 20)  # many chunks: still speaking when the signal comes
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxlet", "say", text, *MODEL, "-o", "-", *long],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    start = time.monotonic()
    _wait_until_voxlet_handles(proc.pid)
    time.sleep(max(0.0, after_s - (time.monotonic() - start)))
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    assert b"Traceback" not in err
    assert all(line.startswith("voxlet: ") for line in err.decode().splitlines())
    assert len(err.decode().splitlines()) <= 2  # "model and voice ready", "interrupted"


@pytest.mark.parametrize("flag", ["--voice", "--weights", "--tokenizer", "--config"])
def test_a_directory_is_called_a_directory(flag, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    args = [*MODEL, "--weights", str(fixture_path("tiny_model.safetensors"))]
    args += ["--tokenizer", str(fixture_path("tokenizer.model"))]
    done = run_voxlet("say", "Hi.", *args, flag, str(folder), "-o", str(tmp_path / "o.wav"))
    one_line_error(done, str(folder).encode())
    assert b"irectory" in done.stderr and b"not found" not in done.stderr


def test_offline_export_voice_asks_for_the_cloning_weights(tmp_path):
    env = {"VOXLET_OFFLINE": "1", "VOXLET_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "v.safetensors"
    done = run_voxlet("export-voice", str(fixture_path("prompt.wav")), str(out), env=env)
    one_line_error(done, b"export-voice clones a voice, which needs the voice-cloning weights")
    assert b"without-voice-cloning" not in done.stderr and not out.exists()


def test_play_without_a_sound_card_says_so(monkeypatch):
    from voxlet.errors import SinkError
    from voxlet.sinks import device

    class NoDevices:
        PortAudioError = OSError

        @staticmethod
        def query_devices(device, kind):
            raise ValueError("Error querying device -1")

    monkeypatch.setattr(device, "_sounddevice", lambda: NoDevices)
    with pytest.raises(SinkError, match="--play: no audio output device here"):
        device.device_rate_hz(None)
    with pytest.raises(SinkError, match="--device 7: not a usable audio output"):
        device.device_rate_hz(7)
