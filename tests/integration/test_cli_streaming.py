"""CLI streaming behaviour: rates, pipes, Ctrl-C, and audio leaving before generation ends."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.integration.cli_helpers import MODEL, VOXLET, read_wav_i16, run_voxlet
from voxlet.audio import f32_to_i16, resample

FORCED = ["--temperature", "0", "--eos-threshold", "1e9", "--on-no-eos", "ignore"]
CMD = [*VOXLET, "say", "Hello world.", *MODEL, *FORCED]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, *args], capture_output=True, timeout=120)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_rate_flag_resamples_exactly(tmp_path, rate):
    f32 = run("--max-frames", "8", "-o", "-", "--format", "f32le", "-q")
    base = np.frombuffer(f32.stdout, "<f4")
    out = tmp_path / "r.wav"
    assert run("--max-frames", "8", "--rate", str(rate), "-o", str(out), "-q").returncode == 0
    samples, file_rate = read_wav_i16(out)
    assert file_rate == rate
    assert np.array_equal(samples, f32_to_i16(resample(base.copy(), 24000, rate)))


def test_first_audio_reaches_stdout_before_the_last_latent():
    proc = subprocess.Popen(
        [*CMD, "--max-frames", "150", "-o", "-", "--format", "s16le", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.read(3840)
    first_at = time.monotonic()
    rest = proc.stdout.read()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and len(first) + len(rest) == 150 * 3840
    last_latent = float(re.search(rb"last latent at ([0-9.]+)", err).group(1))
    assert first_at < last_latent


def test_closed_pipe_ends_quietly():
    proc = subprocess.Popen(
        [*CMD, "--max-frames", "3000", "-o", "-", "--format", "s16le"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(10000)) == 10000
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    err = proc.stderr.read()
    assert b"Traceback" not in err and b"Error" not in err


def test_ctrl_c_leaves_no_file(tmp_path):
    out = tmp_path / "long.wav"
    proc = subprocess.Popen([*CMD, "--max-frames", "10000", "-o", str(out)], stderr=subprocess.PIPE)
    assert proc.stderr is not None
    assert b"model and voice ready" in proc.stderr.readline()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert b"interrupted" in proc.stderr.read()
    assert not out.exists() and list(tmp_path.iterdir()) == []


ASOUNDRC = """pcm.!default {{
    type plug
    slave {{ pcm "voxlet_capture"; format S16_LE; channels 1 }}
}}
pcm.voxlet_capture {{
    type file
    slave.pcm "null"
    file "{path}"
    format "raw"
}}
"""


def _play(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, np.ndarray]:
    """Plays through PortAudio on an ALSA device that records what it is given to a file."""
    raw = tmp_path / "speaker.raw"
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(path=raw))
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run([*CMD, "--play", *args], capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr.decode()
    return done, np.fromfile(raw, "<i2")


def test_playback_through_portaudio_and_alsa_plays_the_same_samples(tmp_path):
    wav = tmp_path / "ref.wav"
    assert run("--max-frames", "10", "-o", str(wav), "-q").returncode == 0
    reference, _ = read_wav_i16(wav)
    # Prebuffer the whole utterance: the capture device has no clock and drains instantly.
    _, played = _play(tmp_path, "--max-frames", "10", "--rate", "24000", "--prebuffer-ms", "2000")
    start = np.flatnonzero(played)[0] - np.flatnonzero(reference)[0]
    segment = played[start : start + len(reference)].astype(int)
    assert len(segment) == len(reference)
    assert np.abs(segment - reference.astype(int)).max() <= 2  # ALSA's own float->s16 rounding
    assert not played[start + len(reference) :].any()


def test_playback_at_the_device_rate(tmp_path):
    done, played = _play(tmp_path, "--max-frames", "10", "--prebuffer-ms", "2000", "-v")
    assert b"first audio" in done.stderr
    expected = round(10 * 0.08 * 44100)  # the device's default rate; resampled in Rust
    assert np.count_nonzero(played) > 0.9 * expected
    assert len(played) >= expected


def test_stream_text_speaks_stdin_as_it_arrives(tmp_path):
    out = tmp_path / "s.wav"
    forced = ["--temperature", "0", "--max-frames", "4", "--on-no-eos", "ignore"]
    proc = subprocess.Popen(
        [*VOXLET, "say", "--stream-text", *MODEL, *forced, "-o", str(out)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    while b"ready" not in proc.stderr.readline():  # the model is loaded: text starts now
        assert proc.poll() is None
    for piece in (b"Hello the", b"re. How are", b" you? \xc3", b"\xa9t\xc3\xa9 fine."):
        proc.stdin.write(piece)  # a character cut in two between writes, too
        proc.stdin.flush()
        time.sleep(0.2)
    proc.stdin.close()
    assert proc.wait(60) == 0, proc.stderr.read().decode()
    # each sentence was spoken as it was completed, so each is its own chunk (the whole text
    # given at once would be one chunk: 4 frames)
    assert len(read_wav_i16(out)[0]) == 3 * 4 * 1920


def test_stream_text_errors_are_one_line(tmp_path):
    bad = run_voxlet(
        "say", "--stream-text", *MODEL, "-o", str(tmp_path / "x.wav"), stdin=b"Hi \xff."
    )
    assert bad.returncode == 1 and b"stdin: not UTF-8 text (byte 3)" in bad.stderr
    assert b"Traceback" not in bad.stderr and not (tmp_path / "x.wav").exists()
    both = run_voxlet("say", "Hi.", "--stream-text", *MODEL, stdin=b"x")
    assert both.returncode == 1 and b"--stream-text reads stdin" in both.stderr


def test_playback_writes_the_word_timings_too(tmp_path):
    timings = tmp_path / "words.json"
    _play(tmp_path, "--max-frames", "10", "--prebuffer-ms", "2000", "--word-timings", str(timings))
    rows = json.loads(timings.read_text())
    assert [r["word"] for r in rows] == ["Hello", "world."]
    assert 0 <= rows[0]["start"] <= rows[0]["end"] <= rows[1]["start"] <= rows[1]["end"] <= 0.8
