"""`voxlet train export`: a codec run and a FlowLM run -> a model folder voxlet (and the
reference package) loads: `model.safetensors` in the official key layout (`flow_lm.*` from the
FlowLM's moving average, `mimi.*` from the codec, without its training-only log-variance head),
`config.yaml` (the runs' layout, pointing at the files beside it), `tokenizer.model`, a
default voice, `voice.safetensors`, made from a validation utterance's latents, and
`MODEL_CARD.md` (`voxlet.train.card`).

Every file is written through a unique temporary file renamed when complete (`voxlet._files`),
so an interrupted export leaves no half-written model behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from voxlet._files import Replaced, plan_output
from voxlet.config import ModelConfig
from voxlet.model.network import PocketTTS
from voxlet.model.voice import save_voice_file, voice_from_conditioning
from voxlet.train import run as runs
from voxlet.train.card import model_card
from voxlet.train.codec import load_run
from voxlet.train.flow import TOKENIZER
from voxlet.train.latents import Latents
from voxlet.tts import DEFAULT_VOICE_FILE

WEIGHTS, CONFIG, CARD = "model.safetensors", "config.yaml", "MODEL_CARD.md"


def _write(path: Path, write: Callable[[Path], object]) -> None:
    """`write(p)` fills the file through voxlet's output plan: a unique temporary file renamed
    over `path` when complete (removed on any failure), a FIFO or device written in place."""
    plan = plan_output(path, "model file")
    written = plan.temporary if isinstance(plan, Replaced) else plan.target
    try:
        write(written)
        if isinstance(plan, Replaced):
            plan.commit()
    except BaseException:
        if isinstance(plan, Replaced):
            plan.discard()
        raise


def network(codec_run: str | Path, flow_run: str | Path) -> tuple[ModelConfig, PocketTTS, int, int]:
    """The whole network with the runs' weights (the FlowLM's moving average), the FlowLM's
    step and the codec's."""
    flow_folder = Path(flow_run)
    cfg = ModelConfig.load(flow_folder / runs.CONFIG)
    codec, codec_step = load_run(codec_run)
    state = torch.load(flow_folder / runs.CHECKPOINT, map_location="cpu", weights_only=False)
    net = PocketTTS(cfg)
    net.flow_lm.load_state_dict(state["ema"])
    net.mimi.load_state_dict(codec.mimi.state_dict())
    return cfg, net.eval(), int(state["step"]), codec_step


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def export(
    codec_run: str | Path,
    flow_run: str | Path,
    out: str | Path,
    voice_frames: int = 25,
    dtype: str = "float32",
) -> Path:
    """Writes the model folder `out`, its weights stored as `dtype` (`float32`, or `bfloat16`
    as the official files are: half the bytes); returns its config's path."""
    if dtype not in DTYPES:
        raise ValueError(f"--dtype: one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    flow_folder = Path(flow_run)
    cfg_path = flow_folder / runs.CONFIG
    cfg, net, step, codec_step = network(codec_run, flow_run)
    tensors = {k: v.detach().to(DTYPES[dtype]).contiguous() for k, v in net.state_dict().items()}
    metadata = {"format": "pt", "voxlet_flow_step": str(step)}
    _write(out / WEIGHTS, lambda p: save_file(tensors, str(p), metadata=metadata))
    data = yaml.safe_load(cfg_path.read_text("utf-8"))
    data["weights_path"] = WEIGHTS
    data["flow_lm"]["lookup_table"]["tokenizer_path"] = TOKENIZER
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    _write(out / CONFIG, lambda p: p.write_text(text, encoding="utf-8"))
    tokenizer = (flow_folder / TOKENIZER).read_bytes()
    _write(out / TOKENIZER, lambda p: p.write_bytes(tokenizer))
    latents = Latents(flow_folder)
    source = max(latents.split("val") or latents.items, key=lambda i: i.frames)
    raw = torch.from_numpy(np.array(latents.raw(source)[:voice_frames])).unsqueeze(0)
    with torch.no_grad():
        voice = voice_from_conditioning(net.flow_lm, net.flow_lm.voice_conditioning(raw))
    save_voice_file(voice, out / DEFAULT_VOICE_FILE)  # by a temporary file of its own
    card = model_card(out.name, cfg, net, Path(codec_run), flow_folder, (codec_step, step), dtype)
    _write(out / CARD, lambda p: p.write_text(card, encoding="utf-8"))
    return out / CONFIG
