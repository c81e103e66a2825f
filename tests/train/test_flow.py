"""FlowLM training on a toy codec's latents, and export to a model folder voxlet loads."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import fixture_path
from tests.train.test_codec import TOY, config, toy_corpus  # noqa: F401 (a fixture)
from voxlet import TTS, GenerationOptions
from voxlet.train import DEFAULT_LAYOUT, codec, flow
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
    _, _, step, _ = network(codec_run, run)
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
    native = TTS.load(config=cfg_path, backend="native")  # the fast path takes it too
    np.testing.assert_allclose(
        native.synthesize("Tone one.", voice, opts), audio, atol=2e-4, rtol=0
    )
    free = TTS.load(config=cfg_path, backend="torch-free")  # and the runtime without torch
    greedy = opts.replace(temperature=0.0)  # its noise is numpy's: compare without noise
    free_voice = free.voice(str(tmp_path / "model" / "voice.safetensors"))
    np.testing.assert_allclose(
        free.synthesize("Tone one.", free_voice, greedy),
        tts.synthesize("Tone one.", voice, greedy),
        atol=2e-4,
        rtol=0,
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
        "MODEL_CARD.md",
        "config.yaml",
        "model.safetensors",
        "tokenizer.model",
        "voice.safetensors",
    ]


@pytest.fixture(scope="module")
def exported(toy_corpus, codec_run, tmp_path_factory):  # noqa: F811
    """A toy model folder, its FlowLM trained a few steps (weights not the initial ones)."""
    root = tmp_path_factory.mktemp("exported")
    train(toy_corpus, codec_run, root / "flow", steps=4, lr=3e-3, warmup=1, ema=0.0)
    return export(codec_run, root / "flow", root / "model").parent


def test_a_new_run_starts_from_an_exported_model(toy_corpus, codec_run, exported, tmp_path):  # noqa: F811
    saved = load_file(exported / "model.safetensors")
    c = tmp_path / "codec"
    codec.train(toy_corpus, c, None, {**TOY, "steps": 1, "lr": 0.0}, init_from=exported)
    started, _ = codec.load_run(c)
    for name, tensor in started.mimi.state_dict().items():
        assert torch.equal(tensor, saved[f"mimi.{name}"]), name
    f = tmp_path / "flow"
    flow.train(toy_corpus, codec_run, f, {**FLOW, "steps": 1, "lr": 0.0}, init_from=exported)
    state = torch.load(f / "checkpoint.pt", weights_only=False)["model"]
    fresh = flow.build(f / "config.yaml", Latents(f), 0).state_dict()
    for name, tensor in state.items():
        if name in ("emb_mean", "emb_std"):  # this codec's latents' statistics
            assert torch.equal(tensor, fresh[name]), name
        else:
            assert torch.equal(tensor, saved[f"flow_lm.{name}"]), name
    assert (f / "tokenizer.model").read_bytes() == (exported / "tokenizer.model").read_bytes()
    # resuming ignores it: the run carries on from its own checkpoint
    flow.train(toy_corpus, codec_run, f, {"steps": 2}, init_from=tmp_path / "nowhere")


def test_init_from_refuses_a_folder_without_a_model_and_another_layout(
    toy_corpus,  # noqa: F811
    exported,
    tmp_path,
):
    with pytest.raises(FileNotFoundError, match=r"--init-from .*no config\.yaml"):
        codec.train(toy_corpus, tmp_path / "a", None, {**TOY, "steps": 1}, init_from=tmp_path)
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    with pytest.raises(ValueError, match=r"--init-from: .*codec '.*' is \[\d.*needs \[\d"):
        codec.train(
            toy_corpus, tmp_path / "b", DEFAULT_LAYOUT, {**TOY, "steps": 1}, init_from=exported
        )
    assert not (tmp_path / "b" / "checkpoint.pt").exists()


def test_bfloat16_export_halves_the_file_and_loads(toy_corpus, codec_run, exported, tmp_path):  # noqa: F811
    flow_run = exported.parent / "flow"
    small = export(codec_run, flow_run, tmp_path / "bf16", dtype="bfloat16").parent
    big, half = exported / "model.safetensors", small / "model.safetensors"
    assert half.stat().st_size < 0.55 * big.stat().st_size
    a, b = load_file(big), load_file(half)
    assert {t.dtype for t in b.values()} == {torch.bfloat16}
    for name, tensor in a.items():
        assert torch.equal(b[name], tensor.bfloat16()), name
    tts = TTS.load(config=small / "config.yaml")
    opts = GenerationOptions(max_frames=4, eos_threshold=1e9, on_no_eos="ignore", seed=1)
    audio = tts.synthesize("Tone one.", tts.voice(str(small / "voice.safetensors")), opts)
    assert audio.shape == (4 * 1920,) and np.isfinite(audio).all() and np.abs(audio).max() > 0
    with pytest.raises(ValueError, match="--dtype: one of float32, bfloat16"):
        export(codec_run, flow_run, tmp_path / "x", dtype="float16")


def test_the_model_card_says_what_the_runs_did(toy_corpus, codec_run, exported):  # noqa: F811
    card = (exported / "MODEL_CARD.md").read_text("utf-8")
    flow_metrics = (exported.parent / "flow" / "metrics.jsonl").read_text().splitlines()
    val_mse = json.loads(flow_metrics[-1])["val_mse"]
    assert card.startswith("# model\n")
    assert "FlowLM: step 4;" in card and f"true latent {val_mse:.4g} (step 4)" in card
    assert "Codec: step 2," in card and "Weights stored as float32" in card
    assert "12 utterances" in card  # from the latents' record of the corpus
