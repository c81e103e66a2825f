"""Corpus folders: appending, resuming after a torn write, crops, and importing recordings."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from voxlet.train import data
from voxlet.train.dataset import MANIFEST, Corpus, CorpusWriter, folder_pairs, level


def tone(seconds: float, hz: float, rate: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int, channels: int = 1) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())


def test_level_sets_rms_and_caps_the_peak():
    x = level(tone(1.0, 220))
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.1, rel=1e-3)
    spiky = np.zeros(24000, np.float32)
    spiky[100] = 1.0
    assert np.max(np.abs(level(spiky))) == pytest.approx(0.95, rel=1e-4)
    with pytest.raises(ValueError, match="silent"):
        level(np.zeros(100, np.float32))


def test_writer_appends_and_reader_returns_the_audio(tmp_path):
    with CorpusWriter(tmp_path, {"audio": "tones"}) as w:
        w.add("a", "First.", "train", "t", tone(0.5, 220))
        w.add("b", "Second.", "val", "t", tone(0.25, 440))
    c = Corpus(tmp_path)
    assert [u.id for u in c.utterances] == ["a", "b"]
    assert [u.id for u in c.split("val")] == ["b"]
    assert c.utterances[1].offset == 12000 and c.utterances[1].samples == 6000
    np.testing.assert_allclose(c.audio(c.utterances[1]), tone(0.25, 440), atol=1 / 16384)
    assert c.hours() == pytest.approx(0.75 / 3600)
    assert json.loads((tmp_path / "info.json").read_text())["audio"] == "tones"


def test_a_torn_write_is_dropped_and_the_run_resumes(tmp_path):
    with CorpusWriter(tmp_path) as w:
        w.add("a", "First.", "train", "t", tone(0.5, 220))
        w.add("b", "Second.", "train", "t", tone(0.5, 330))
    # a run killed mid-item: audio of a third item written, its manifest line torn
    with open(tmp_path / "audio.i16", "ab") as f:
        f.write(b"\x01\x00" * 5000)
    with open(tmp_path / MANIFEST, "a") as f:
        f.write('{"id": "c", "te')
    w = CorpusWriter(tmp_path)
    assert [u.id for u in w.done] == ["a", "b"]
    assert w.missing(["a", "b", "c"]) == ["c"]
    w.add("c", "Third.", "train", "t", tone(0.5, 440))
    w.close()
    c = Corpus(tmp_path)
    assert (tmp_path / "audio.i16").stat().st_size == 3 * 12000 * 2
    np.testing.assert_allclose(c.audio(c.utterances[2]), tone(0.5, 440), atol=1 / 16384)


def test_crops_are_reproducible_in_range_and_padded(tmp_path):
    with CorpusWriter(tmp_path) as w:
        w.add("long", "Long.", "train", "t", tone(1.0, 220))
        w.add("short", "Short.", "train", "t", tone(0.1, 220))
    c = Corpus(tmp_path)
    a = c.crops(c.utterances, 16, 4800, np.random.default_rng(5))
    b = c.crops(c.utterances, 16, 4800, np.random.default_rng(5))
    assert a.shape == (16, 4800) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 0.3 + 1e-4
    padded = [row for row in a if not row[2400:].any()]  # the 0.1 s item, zero-padded
    assert all(row[:2400].any() for row in padded)


def test_folder_pairs_read_ljspeech_and_wav_txt_pairs(tmp_path):
    lj = tmp_path / "lj"
    (lj / "wavs").mkdir(parents=True)
    (lj / "metadata.csv").write_text("LJ001|Raw text 1|Normalised text one\nLJ002|Two\n")
    assert [(i, t) for i, t, _ in folder_pairs(lj)] == [
        ("LJ001", "Normalised text one"),
        ("LJ002", "Two"),
    ]
    pairs = tmp_path / "pairs"
    (pairs / "sub").mkdir(parents=True)
    (pairs / "sub" / "x.wav").write_bytes(b"")
    (pairs / "sub" / "x.txt").write_text(" Hello there. \n")
    (pairs / "lonely.wav").write_bytes(b"")
    assert [(i, t) for i, t, _ in folder_pairs(pairs)] == [("sub/x", "Hello there.")]


def test_from_folder_resamples_to_24k_mono_and_resumes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_wav(src / "one.wav", tone(0.5, 300, 16000), 16000, channels=2)
    (src / "one.txt").write_text("The first recording.")
    out = tmp_path / "corpus"
    data.from_folder(src, out)
    write_wav(src / "two.wav", tone(0.25, 300, 22050), 22050)
    (src / "two.txt").write_text("The second recording.")
    w = data.from_folder(src, out)
    assert [u.id for u in w.done] == ["one", "two"]
    c = Corpus(out)
    assert [u.samples for u in c.utterances] == [12000, 6000]
    assert c.utterances[0].text == "The first recording."
    with pytest.raises(FileNotFoundError, match=r"no metadata\.csv"):
        data.from_folder(tmp_path / "corpus", tmp_path / "other")
