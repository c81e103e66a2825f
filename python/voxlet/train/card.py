"""The model card an export writes beside the weights (`MODEL_CARD.md`): what the model is,
what it was trained on and for how long, and the runs' last validation figures, from the run
folders alone. Intelligibility is measured separately (`benches/bench_intelligibility.py`)."""

from __future__ import annotations

import json
from pathlib import Path

from voxlet.config import ModelConfig
from voxlet.model.network import PocketTTS
from voxlet.train import run as runs


def last_metrics(run_dir: Path, step: int) -> dict[str, tuple[float, int]]:
    """Each metric's last logged value up to `step` (the exported checkpoint's), with the
    step it was logged at (validation ones are logged less often)."""
    last: dict[str, tuple[float, int]] = {}
    path = run_dir / runs.METRICS
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            if row["step"] <= step:
                last.update({k: (v, row["step"]) for k, v in row.items()})
    return last


def _params(*modules) -> str:
    return f"{sum(p.numel() for m in modules for p in m.parameters()) / 1e6:.2f}M"


def model_card(
    name: str,
    cfg: ModelConfig,
    net: PocketTTS,
    codec_run: Path,
    flow_run: Path,
    steps: tuple[int, int],
    dtype: str,
) -> str:
    """`steps`: the codec's and the FlowLM's checkpoint steps, the weights exported."""
    codec_step, flow_step = steps
    codec, flow = last_metrics(codec_run, codec_step), last_metrics(flow_run, flow_step)
    index = flow_run / "latents.json"
    corpus = json.loads(index.read_text("utf-8")).get("corpus", {}) if index.exists() else {}
    mimi = net.mimi
    decoder = [mimi.decoder, mimi.decoder_transformer, mimi.upsample, mimi.quantizer]
    encoder = [mimi.encoder, mimi.encoder_transformer, mimi.downsample]

    def fmt(metrics: dict[str, tuple[float, int]], key: str) -> str:
        if key not in metrics:
            return "not measured"
        value, at = metrics[key]
        return f"{value:.4g} (step {at})"

    text = corpus.get("text", [])
    lines = [
        f"# {name}",
        "",
        "A small text-to-speech model of the Pocket TTS family, trained by voxlet's own pipeline",
        "(`voxlet train`); it runs through voxlet's ordinary runtime like the official models.",
        "",
        "## Model",
        f"- FlowLM {_params(net.flow_lm)} (d_model {cfg.flow_lm.transformer.d_model}, "
        f"{cfg.flow_lm.transformer.num_layers} layers, {cfg.flow_lm.flow.type} flow head), "
        f"codec decoder {_params(*decoder)}, cloning encoder {_params(*encoder)}",
        f"- Weights stored as {dtype}, in the official key layout.",
        "",
        "## Data",
        f"- Audio: {corpus.get('audio', 'unknown')}",
        f"- Text: {'; '.join(text) if text else 'unknown'}",
        f"- Corpus: {corpus.get('utterances', '?')} utterances, "
        f"{corpus.get('train_hours', '?')} h in the train split (sentence draw seed "
        f"{corpus.get('seed', '?')}); the held-out test split is never trained on.",
        "",
        "## Training",
        f"- Codec: step {codec_step}, {codec.get('audio_h', (0.0, 0))[0]:.1f} h of audio "
        f"seen; validation log-mel L1 {fmt(codec, 'val_mel')}.",
        f"- FlowLM: step {flow_step}; validation MSE to the true latent "
        f"{fmt(flow, 'val_mse')}, EOS BCE {fmt(flow, 'val_eos')} (EMA weights).",
        "",
        "## Limitations",
        "- One English voice (the teacher's); text outside the corpus's kinds of sentences may",
        "  be read less well. Measure intelligibility before relying on it:",
        "  `benches/bench_intelligibility.py --config config.yaml`.",
        "",
    ]
    return "\n".join(lines)
