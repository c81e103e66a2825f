"""voxlet.audio (the Rust core) as Python sees it: WAV I/O, errors, sinks, voice prompt rates."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import soundfile

from tests.conftest import fixture_path
from voxlet import SinkError, VoiceError
from voxlet.audio import (
    AudioError,
    PcmPipeline,
    WavWriter,
    f32_to_i16,
    read_audio,
    read_wav,
    resample,
    wav_header,
)
from voxlet.sinks import StdoutSink, WavFileSink


def test_audio_error_is_a_value_error():
    assert issubclass(AudioError, ValueError)
    with pytest.raises(AudioError, match="C-contiguous"):
        f32_to_i16(np.zeros(10, np.float32)[::2])
    with pytest.raises(AudioError, match="too small"):
        f32_to_i16(np.zeros(4, np.float32), np.zeros(2, np.int16))
    with pytest.raises(AudioError, match="invalid sample rates"):
        resample(np.zeros(4, np.float32), 0, 24000)
    with pytest.raises(AudioError, match="format must be"):
        wav_header(24000, 1, "s24")
    with pytest.raises(AudioError, match="ring capacity"):
        PcmPipeline(24000, 24000, 0)


def test_wav_writer_is_read_by_stdlib_wave(tmp_path):
    pcm = np.sin(np.linspace(0, 60, 5000)).astype(np.float32)
    writer = WavWriter(str(tmp_path / "a.wav"), 24000)
    writer.write(pcm[:1234])
    writer.write(pcm[1234:])
    writer.close()
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert (w.getnframes(), w.getframerate(), w.getsampwidth()) == (5000, 24000, 2)
        data = np.frombuffer(w.readframes(5000), "<i2")
    assert np.array_equal(data, f32_to_i16(pcm))


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8"])
@pytest.mark.parametrize("channels", [1, 2])
def test_read_wav_matches_soundfile(tmp_path, subtype, channels):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, (3000, channels)).astype(np.float32)
    path = tmp_path / "x.wav"
    soundfile.write(str(path), x, 22050, subtype=subtype)
    ours, rate = read_wav(str(path))
    theirs, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert rate == 22050 and ours.shape == (3000, channels)
    np.testing.assert_allclose(ours, theirs, atol=1e-7)


def test_read_audio_other_formats_and_errors(tmp_path):
    x = np.zeros((100, 1), np.float32)
    soundfile.write(str(tmp_path / "x.flac"), x, 16000)
    data, rate = read_audio(tmp_path / "x.flac")
    assert rate == 16000 and data.shape == (100, 1)
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVEjunk")
    with pytest.raises(AudioError, match="no data chunk"):
        read_audio(tmp_path / "junk.wav")


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_voice_prompt_at_any_rate(tiny_tts, tmp_path, rate):
    samples, _ = read_audio(fixture_path("prompt.wav"))
    path = tmp_path / f"prompt{rate}.wav"
    soundfile.write(str(path), resample(samples, 24000, rate), rate, subtype="FLOAT")
    reference = tiny_tts.voice(str(fixture_path("prompt.wav"))).state.keys[0]
    resampled = tiny_tts.voice(str(path)).state.keys[0]
    assert resampled.shape == reference.shape
    # Band-limited round trips change the prompt only slightly (44.1/48 k keep it all).
    assert float((resampled - reference).abs().max()) < (0.5 if rate == 16000 else 0.05)


def test_voice_prompt_stereo_is_averaged(tiny_tts):
    mono, _ = read_audio(fixture_path("prompt.wav"))
    stereo = np.concatenate([mono, mono], axis=1)
    a = tiny_tts.voice_from_audio(stereo, 24000).state.keys[0]
    b = tiny_tts.voice(str(fixture_path("prompt.wav"))).state.keys[0]
    assert bool((a == b).all())
    with pytest.raises(VoiceError, match="sample rate"):
        tiny_tts.voice_from_audio(mono, 0)


def test_stdout_sink_streams_wav_with_unknown_size():
    buf = io.BytesIO()
    sink = StdoutSink("wav", 24000, stream=buf)
    sink.write(np.full(1920, 0.5, np.float32))
    sink.close()
    data = buf.getvalue()
    assert data[:4] == b"RIFF" and data[4:8] == b"\xff\xff\xff\xff"
    assert data[40:44] == b"\xff\xff\xff\xff" and len(data) == 44 + 3840
    samples, rate = read_wav_bytes(data)
    assert rate == 24000 and np.all(samples == np.float32(16384 / 32768))


def read_wav_bytes(data: bytes):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        f.write(data)
        f.flush()
        return read_wav(f.name)


def test_wav_file_sink_is_atomic(tmp_path):
    target = tmp_path / "out.wav"
    sink = WavFileSink(target, 24000)
    sink.write(np.zeros(1920, np.float32))
    assert not target.exists()
    sink.abort()
    assert not target.exists() and not list(tmp_path.iterdir())
    sink = WavFileSink(target, 24000)
    sink.write(np.zeros(1920, np.float32))
    sink.close()
    assert read_wav(str(target))[0].shape == (1920, 1)
    with pytest.raises(SinkError, match="cannot write"):
        WavFileSink(tmp_path / "missing-dir" / "x.wav", 24000)
