"""`voxlet train export`: a codec run and a FlowLM run -> a model folder voxlet (and the
reference package) loads: `model.safetensors` in the official key layout (`flow_lm.*` from the
FlowLM's moving average, `mimi.*` from the codec, without its training-only log-variance head),
`config.yaml` (the runs' layout, pointing at the files beside it), `tokenizer.model` and a
default voice, `voice.safetensors`, made from a validation utterance's latents.

Every file is written by a temporary name and renamed, so an interrupted export leaves no
half-written model behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from voxlet.config import ModelConfig
from voxlet.model.network import PocketTTS
from voxlet.model.voice import save_voice_file, voice_from_conditioning
from voxlet.train import run as runs
from voxlet.train.codec import load_run
from voxlet.train.flow import TOKENIZER
from voxlet.train.latents import Latents
from voxlet.tts import DEFAULT_VOICE_FILE

WEIGHTS, CONFIG = "model.safetensors", "config.yaml"


def _replace(tmp: Path, path: Path) -> Path:
    """Renames a finished temporary file into place, readable as the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    return path


def network(codec_run: str | Path, flow_run: str | Path) -> tuple[ModelConfig, PocketTTS, int]:
    """The whole network with the runs' weights (the FlowLM's moving average), and the
    FlowLM's step."""
    flow_folder = Path(flow_run)
    cfg = ModelConfig.load(flow_folder / runs.CONFIG)
    codec, _ = load_run(codec_run)
    state = torch.load(flow_folder / runs.CHECKPOINT, map_location="cpu", weights_only=False)
    net = PocketTTS(cfg)
    net.flow_lm.load_state_dict(state["ema"])
    net.mimi.load_state_dict(codec.mimi.state_dict())
    return cfg, net.eval(), int(state["step"])


def export(
    codec_run: str | Path, flow_run: str | Path, out: str | Path, voice_frames: int = 25
) -> Path:
    """Writes the model folder `out`; returns its config's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    flow_folder = Path(flow_run)
    cfg_path = flow_folder / runs.CONFIG
    _, net, step = network(codec_run, flow_run)
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    tmp = out / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "voxlet_flow_step": str(step)})
    _replace(tmp, out / WEIGHTS)
    data = yaml.safe_load(cfg_path.read_text("utf-8"))
    data["weights_path"] = WEIGHTS
    data["flow_lm"]["lookup_table"]["tokenizer_path"] = TOKENIZER
    tmp = out / (CONFIG + ".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    _replace(tmp, out / CONFIG)
    tmp = out / (TOKENIZER + ".tmp")
    tmp.write_bytes((flow_folder / TOKENIZER).read_bytes())
    _replace(tmp, out / TOKENIZER)
    latents = Latents(flow_folder)
    source = max(latents.split("val") or latents.items, key=lambda i: i.frames)
    raw = torch.from_numpy(np.array(latents.raw(source)[:voice_frames])).unsqueeze(0)
    with torch.no_grad():
        voice = voice_from_conditioning(net.flow_lm, net.flow_lm.voice_conditioning(raw))
    save_voice_file(voice, out / DEFAULT_VOICE_FILE)  # by a temporary file of its own
    return out / CONFIG
