"""The `voxlet` command end to end on the tiny model, as a subprocess."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FIXTURES, fixture_path
from tests.integration.cli_helpers import MODEL, read_wav_i16, run_voxlet

FORCED = ["--temperature", "0", "--max-frames", "6", "--on-no-eos", "ignore"]
run = run_voxlet


def read_wav(path) -> np.ndarray:
    samples, rate = read_wav_i16(path)
    assert rate == 24000
    return samples


def test_say_to_wav_and_to_stdout_give_the_same_samples(tmp_path):
    out = tmp_path / "a.wav"
    r = run("say", "Hello world.", *MODEL, *FORCED, "-o", str(out))
    assert r.returncode == 0, r.stderr.decode()
    assert b"first audio" in r.stderr and r.stdout == b""
    wav = read_wav(out)
    assert wav.shape == (6 * 1920,)
    raw = run("say", "Hello world.", *MODEL, *FORCED, "-o", "-", "--format", "s16le", "-q")
    assert raw.returncode == 0 and raw.stderr == b""
    assert np.array_equal(np.frombuffer(raw.stdout, dtype="<i2"), wav)
    f32 = run("say", "Hello world.", *MODEL, *FORCED, "-o", "-", "--format", "f32le", "-q")
    pcm = np.frombuffer(f32.stdout, dtype="<f4")
    assert np.array_equal(np.clip(np.round(pcm * 32767), -32768, 32767).astype("<i2"), wav)
    assert not list(tmp_path.glob(".*partial"))


def test_stdin_text_and_export_voice(tmp_path):
    voice = tmp_path / "v.safetensors"
    r = run(
        "export-voice",
        str(FIXTURES / "prompt.wav"),
        str(voice),
        "--config",
        str(fixture_path("tiny_config.yaml")),
        "-q",
    )
    assert r.returncode == 0, r.stderr.decode()
    a = run(
        "say",
        "-",
        "--config",
        str(fixture_path("tiny_config.yaml")),
        "--voice",
        str(voice),
        *FORCED,
        "-o",
        str(tmp_path / "x.wav"),
        stdin=b"Hello world.",
    )
    b = run("say", "Hello world.", *MODEL, *FORCED, "-o", str(tmp_path / "y.wav"))
    assert a.returncode == b.returncode == 0
    diff = read_wav(tmp_path / "x.wav").astype(int) - read_wav(tmp_path / "y.wav").astype(int)
    assert np.abs(diff).max() <= 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["say", "", *MODEL], b"Text prompt cannot be empty"),
        (
            ["say", "Hi", *MODEL, "-o", "/nonexistent-dir/x.wav"],
            b"cannot write /nonexistent-dir/x.wav",
        ),
        (
            ["say", "Hi", "--config", str(FIXTURES / "tiny_config.yaml"), "--voice", "nobody"],
            b"unknown voice 'nobody'",
        ),
        (["say", "Hi", "--weights", "/nope.safetensors"], b"model weights file not found"),
    ],
)
def test_errors_are_one_clear_line(args, message, tmp_path):
    r = run(*args, env={"VOXLET_OFFLINE": "1"})
    assert r.returncode == 1
    assert message in r.stderr and b"Traceback" not in r.stderr


def test_help_shows_defaults():
    r = run("say", "--help")
    assert b"--max-tokens" in r.stdout and b"(default: 50)" in r.stdout


def test_int8_precision_flag(tmp_path):
    out = tmp_path / "int8.wav"
    r = run("say", "Hello world.", *MODEL, *FORCED, "--precision", "int8", "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr.decode()
    assert read_wav(out).shape == (6 * 1920,)
    bad = run("say", "Hello world.", *MODEL, "--precision", "int4")
    assert bad.returncode == 2 and b"invalid choice: 'int4'" in bad.stderr


def test_text_is_normalised_unless_no_normalize():
    def pcm(*args):
        r = run("say", *args, *MODEL, *FORCED, "--seed", "3", "-o", "-", "--format", "s16le", "-q")
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout

    said = pcm("It costs $5.")
    assert said == pcm("--no-normalize", "It costs five dollars.")
    assert said != pcm("--no-normalize", "It costs $5.")
    assert b"--no-normalize" in run("say", "--help").stdout


def test_speed_flag(tmp_path):
    normal, fast = tmp_path / "n.wav", tmp_path / "f.wav"
    assert run("say", "Hello world.", *MODEL, *FORCED, "-o", str(normal), "-q").returncode == 0
    r = run("say", "Hello world.", *MODEL, *FORCED, "--speed", "2", "-o", str(fast), "-q")
    assert r.returncode == 0, r.stderr.decode()
    assert len(read_wav(fast)) == len(read_wav(normal)) // 2
    bad = run("say", "Hello world.", *MODEL, "--speed", "9", "-o", str(tmp_path / "x.wav"))
    assert bad.returncode == 1 and b"speed: must be 0.25..4.0" in bad.stderr
    assert b"Traceback" not in bad.stderr and not (tmp_path / "x.wav").exists()
