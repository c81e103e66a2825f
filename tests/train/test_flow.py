"""FlowLM training on a toy codec's latents, and export to a model folder voxlet loads."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import fixture_path
from tests.train.test_codec import TOY, config, toy_corpus  # noqa: F401 (a fixture)
from voxlet import TTS, GenerationOptions
from voxlet.train import codec, flow
from voxlet.train.export import export, network
from voxlet.train.latents import Latents

FLOW = {"batch": 4, "log_every": 1, "val_every": 5, "voice_min": 2, "voice_max": 4, "ema": 0.9}


@pytest.fixture(scope="module")
def codec_run(toy_corpus, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("codec")
    codec.train(toy_corpus, run, config(), {**TOY, "steps": 2})
    return run


def train(corpus, codec_run, run, **settings):
    tok = fixture_path("tokenizer.model")
    return flow.train(corpus, codec_run, run, {**FLOW, **settings}, tokenizer=tok)


def test_training_lowers_the_flow_loss(toy_corpus, codec_run, tmp_path):  # noqa: F811
    train(toy_corpus, codec_run, tmp_path / "a", steps=40, warmup=2, lr=3e-3)
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    mse = [json.loads(line)["mse"] for line in lines]
    assert np.mean(mse[-5:]) < 0.7 * np.mean(mse[:5])
    latents = Latents(tmp_path / "a")
    assert len(latents.items) == 12
    assert latents.std.shape == (32,) and (latents.std > 0).all()


def test_a_resumed_run_reproduces_an_uninterrupted_one(toy_corpus, codec_run, tmp_path):  # noqa: F811
    train(toy_corpus, codec_run, tmp_path / "straight", steps=6, save_every=3)
    train(toy_corpus, codec_run, tmp_path / "resumed", steps=3, save_every=3)
    flow.train(toy_corpus, codec_run, tmp_path / "resumed", {"steps": 6})
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    for part in ("model", "ema"):
        for name, tensor in a[part].items():
            assert torch.equal(tensor, b[part][name]), (part, name)


def test_teacher_forcing_shifts_the_latents_by_one(toy_corpus, codec_run, tmp_path):  # noqa: F811
    train(toy_corpus, codec_run, tmp_path / "r", steps=1)
    latents = Latents(tmp_path / "r")
    flow_lm = flow.build(tmp_path / "r" / "config.yaml", latents, 0).eval()
    item = latents.items[3]
    voice, frames = latents.raw(latents.items[4])[:3], latents.normalised(item)
    changed = frames.copy()
    changed[5] += 1.0

    def hidden(x1):
        batch = flow.Batch([(voice, [10, 20, 30], x1)])
        with torch.no_grad():
            x, spans, _ = flow.sequences(flow_lm, batch)
            out = flow_lm.transformer(x, flow_lm.transformer.init_state(1, x.shape[1]))
        start, n = spans[0]
        assert start == 1 + 3 + 3 and n == len(x1)  # bos_before_voice, voice, text
        return out[0, start : start + n]

    a, b = hidden(frames), hidden(changed)
    assert torch.equal(a[:6], b[:6])  # frame 5 is read from position 6 on
    assert not torch.allclose(a[6], b[6])


def test_export_loads_and_equals_the_trained_modules(toy_corpus, codec_run, tmp_path):  # noqa: F811
    run = tmp_path / "flow"
    train(toy_corpus, codec_run, run, steps=3)
    cfg_path = export(codec_run, run, tmp_path / "model")
    tts = TTS.load(config=cfg_path, backend="torch")
    _, _, step = network(codec_run, run)
    assert step == 3
    ema = torch.load(run / "checkpoint.pt", weights_only=False)["ema"]
    for name, tensor in tts.network.flow_lm.state_dict().items():
        assert torch.equal(tensor, ema[name]), name
    trained, _ = codec.load_run(codec_run)
    z = torch.randn(1, 32, 4)
    with torch.no_grad():
        mimi = tts.network.mimi
        loaded = mimi.decode(z.transpose(1, 2), mimi.init_decoder_state(1))[:, 0]
        np.testing.assert_array_equal(loaded.numpy(), trained.decode(z).numpy())
    voice = tts.voice(str(tmp_path / "model" / "voice.safetensors"))
    opts = GenerationOptions(max_frames=8, eos_threshold=1e9, on_no_eos="ignore", seed=1)
    audio = tts.synthesize("Tone one.", voice, opts)
    assert audio.shape == (8 * 1920,) and np.isfinite(audio).all()
    native = TTS.load(config=cfg_path)  # the fast path takes the exported layout too
    np.testing.assert_allclose(
        native.synthesize("Tone one.", voice, opts), audio, atol=2e-4, rtol=0
    )


def test_cli_runs_flow_and_export(toy_corpus, codec_run, tmp_path):  # noqa: F811
    run, out = tmp_path / "f", tmp_path / "m"
    flags = ["--batch=2", "--steps=2", "--voice-min=2", "--voice-max=3", "--threads=1"]
    tok = f"--tokenizer={fixture_path('tokenizer.model')}"
    base = [sys.executable, "-m", "voxlet", "train"]
    cmd = [*base, "flow", f"--data={toy_corpus}", f"--codec={codec_run}", f"--run-dir={run}"]
    r = subprocess.run([*cmd, tok, *flags], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert b"flow 2/2" in r.stderr and r.stdout == b""
    r = subprocess.run(
        [*base, "export", f"--codec={codec_run}", f"--flow={run}", f"--out={out}"],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "model.safetensors",
        "tokenizer.model",
        "voice.safetensors",
    ]
