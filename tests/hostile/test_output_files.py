"""Output files as a hostile or careless user meets them (issue 13, class 1): the CLI's `-o`
and `TTS.save_voice` write regular files through a unique temporary file renamed when complete,
stream into FIFOs and devices without replacing them, write through symlinks, refuse
directories, empty paths and missing folders before any model work, and leave nothing behind
on an error or a signal. Only files, FIFOs and links made in a temporary folder are touched.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import threading
import time
import wave

import pytest

from tests.conftest import fixture_path
from tests.integration.cli_helpers import MODEL, VOXLET, read_wav_i16, run_voxlet

SHORT = ["--max-frames", "3", "--eos-threshold", "1e9", "--on-no-eos", "ignore"]


def say(out, *extra: str) -> subprocess.CompletedProcess:
    return run_voxlet("say", "Hello world.", *MODEL, *SHORT, "-o", str(out), *extra)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def one_line_error(done: subprocess.CompletedProcess, words: bytes) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and words.decode() in lines[0], done.stderr
    assert b"Traceback" not in done.stderr and b"model and voice ready" not in done.stderr


def test_a_regular_file_is_replaced_whole_keeping_its_permissions(tmp_path):
    out = tmp_path / "out.wav"
    out.write_bytes(b"old")
    out.chmod(0o640)
    done = say(out)
    assert done.returncode == 0, done.stderr
    samples, rate = read_wav_i16(out)
    assert rate == 24000 and len(samples) == 3 * 1920
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_a_new_file_gets_the_umask_permissions(tmp_path):
    out = tmp_path / "new.wav"
    old = os.umask(0o027)
    try:
        done = say(out)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # 0o666 & ~0o027


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "real.wav"
    target.write_bytes(b"old")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    done = say(link)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert len(read_wav_i16(target)[0]) == 3 * 1920
    assert leftovers(tmp_path) == []


def test_a_fifo_is_streamed_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    done = say(fifo)
    reader.join(60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the FIFO, not a regular file
    data = received[0]
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert len(data) == 44 + 3 * 1920 * 2  # the streaming header, then every sample
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name,words",
    [
        ("", b"output: empty path"),
        ("folder", b"it is a directory"),
        ("missing/out.wav", b"does not exist"),
    ],
)
def test_bad_targets_fail_before_the_model_loads(tmp_path, name, words):
    (tmp_path / "folder").mkdir()
    out = tmp_path / name if name else ""
    before = sorted(p.name for p in tmp_path.iterdir())
    one_line_error(say(out), words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_two_runs_on_one_path_both_finish_with_a_whole_file(tmp_path):
    out = tmp_path / "shared.wav"
    cmd = [*VOXLET, "say", "Hello world.", *MODEL, *SHORT, "-o", str(out)]
    runs = [subprocess.Popen(cmd, stderr=subprocess.PIPE) for _ in range(2)]
    for p in runs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    with wave.open(str(out)) as w:
        assert w.getnframes() == 3 * 1920
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_mid_write_leaves_nothing(tmp_path, sig):
    """A long synthesis into a file, stopped once its temporary file exists: the command exits
    128 + the signal (130 for Ctrl-C), quietly, and no file is left, temporary or final."""
    out = tmp_path / "long.wav"
    long = ["--max-frames", "2000", "--eos-threshold", "1e9", "--on-no-eos", "ignore"]
    cmd = [*VOXLET, "say", "Hello world. " * 20, *MODEL, *long, "-o", str(out)]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    assert leftovers(tmp_path), "the run never started writing"
    time.sleep(0.3)  # mid-write
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    assert b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_save_voice_replaces_whole_and_refuses_a_directory(tiny_tts, tmp_path):
    voice = tiny_tts.voice(str(fixture_path("tiny_voice.safetensors")))
    out = tmp_path / "v.safetensors"
    out.write_bytes(b"old")
    tiny_tts.save_voice(voice, out)
    assert tiny_tts.voice(str(out)).state.n_positions == voice.state.n_positions
    from voxlet.errors import VoiceError

    with pytest.raises(VoiceError, match=r"cannot write voice file .*: it is a directory"):
        tiny_tts.save_voice(voice, tmp_path)
    assert leftovers(tmp_path) == []


def test_a_new_voice_file_gets_the_umasks_permissions(tiny_tts, tmp_path):
    """safetensors replaces the temporary file it is given: the mode is set at the rename."""
    voice = tiny_tts.voice(str(fixture_path("tiny_voice.safetensors")))
    out = tmp_path / "new.safetensors"
    old = os.umask(0o027)
    try:
        tiny_tts.save_voice(voice, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []
