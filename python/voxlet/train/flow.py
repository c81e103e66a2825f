"""`voxlet train flow`: the FlowLM on a trained codec's latents, by teacher forcing.

Each training sequence is what the model sees at run time, in one pass: `bos_before_voice`, a
voice prompt (1-2 s of another utterance's raw latents through `speaker_proj`), the text's
tokens, then BOS and the utterance's normalised latents shifted by one. The transformer runs
causally over it; at every audio position the heads read z:
- the flow head gets `flow_samples` noise draws x0 ~ N(0, 1) per position and makes a latent
  from each (pointwise: x0 + f(z, x0)); the loss is the energy score of those draws against the
  true latent, E|y - x| - E|y - y'| / 2, a proper scoring rule for one-step samplers (or plain
  MSE with `loss="mse"`, which learns the conditional mean);
- the EOS head a binary cross-entropy, 1 on the last `eos_frames` frames.
An exponential moving average of the weights is kept for export.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from voxlet.config import ModelConfig
from voxlet.constants import LATENT_DIM
from voxlet.model.flow_lm import FlowLM
from voxlet.text import TextRules, Tokenizer, load_tokenizer, split_into_chunks
from voxlet.train import init
from voxlet.train import run as runs
from voxlet.train.latents import Item, Latents, encode_corpus
from voxlet.train.progress import Progress
from voxlet.train.settings import FlowSettings
from voxlet.train.tokenizer import train_tokenizer

log = logging.getLogger("voxlet.train")
TOKENIZER = "tokenizer.model"


def text_rules(cfg: ModelConfig) -> TextRules:
    return TextRules(
        cfg.replace_characters, cfg.remove_semicolons, cfg.pad_with_spaces_for_short_inputs
    )


def token_ids(text: str, tokenizer: Tokenizer, rules: TextRules) -> list[int]:
    """The ids the runtime prompts with for this text, as one chunk."""
    chunks = split_into_chunks(text, tokenizer, rules, 10_000)
    return [int(t) for c in chunks for t in c.token_ids]


def init_flow_lm(flow_lm: FlowLM, mean: np.ndarray, std: np.ndarray) -> None:
    """Starting values for the parameters a checkpoint would fill; the rest keep PyTorch's."""
    with torch.no_grad():
        nn.init.normal_(flow_lm.conditioner.embed.weight, std=1.0)
        nn.init.normal_(flow_lm.bos_emb, std=1.0)
        nn.init.normal_(flow_lm.speaker_proj_weight, std=1.0 / math.sqrt(LATENT_DIM))
        if flow_lm.bos_before_voice is not None:
            nn.init.normal_(flow_lm.bos_before_voice, std=1.0)
        flow_lm.emb_mean.copy_(torch.from_numpy(mean))
        flow_lm.emb_std.copy_(torch.from_numpy(std))


def build(config: Path, latents: Latents, seed: int) -> FlowLM:
    cfg = ModelConfig.load(config)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        flow_lm = FlowLM(cfg)
        init_flow_lm(flow_lm, latents.mean, latents.std)
    return flow_lm


@dataclass
class Batch:
    inputs: list[tuple[np.ndarray, list[int], np.ndarray]]  # voice raw, tokens, normalised


def sequences(
    flow_lm: FlowLM, batch: Batch
) -> tuple[torch.Tensor, list[tuple[int, int]], torch.Tensor]:
    """The padded input sequences (B, L, D), each item's (first audio position, frames), and
    the target latents of all items, concatenated (N, 32)."""
    rows, spans, targets = [], [], []
    for voice, tokens, latents in batch.inputs:
        prefix = flow_lm.voice_conditioning(torch.from_numpy(voice).unsqueeze(0))[0]
        text = flow_lm.embed_tokens(torch.tensor([tokens]))[0]
        x1 = torch.from_numpy(latents)
        shifted = torch.cat([flow_lm.bos_emb.view(1, LATENT_DIM), x1[:-1]])
        audio = flow_lm.input_linear(shifted)
        rows.append(torch.cat([prefix, text, audio]))
        spans.append((len(prefix) + len(text), len(x1)))
        targets.append(x1)
    x = nn.utils.rnn.pad_sequence(rows, batch_first=True)
    return x, spans, torch.cat(targets)


def losses(flow_lm: FlowLM, batch: Batch, settings: FlowSettings) -> dict[str, torch.Tensor]:
    x, spans, x1 = sequences(flow_lm, batch)
    state = flow_lm.transformer.init_state(x.shape[0], x.shape[1])
    h = flow_lm.out_norm(flow_lm.transformer(x, state))
    z = torch.cat([h[b, start : start + n] for b, (start, n) in enumerate(spans)])
    z = flow_lm.project(z)  # (N, z)
    labels = torch.cat([(torch.arange(n) >= n - settings.eos_frames).float() for _, n in spans])
    eos = F.binary_cross_entropy_with_logits(flow_lm.out_eos(z)[:, 0], labels)
    k = settings.flow_samples
    c = z.repeat_interleave(k, dim=0)
    x0 = torch.randn(c.shape[0], LATENT_DIM)
    y = flow_lm.flow_net.sample(c, x0, 1).view(-1, k, LATENT_DIM)  # (N, k, 32)
    if settings.loss == "mse":
        flow = (y - x1.unsqueeze(1)).square().mean()
    else:
        fit = (y - x1.unsqueeze(1)).norm(dim=-1).mean()
        spread = torch.cdist(y, y).sum(dim=(1, 2)) / (k * (k - 1))
        flow = fit - 0.5 * spread.mean()
    mse = (y.detach() - x1.unsqueeze(1)).square().mean()
    return {"flow": flow, "eos": eos, "mse": mse}


class Sampler:
    """Draws training batches: utterances, another utterance's crop as the voice, tokens."""

    def __init__(self, latents: Latents, items: list[Item], tokens: dict[str, list[int]]):
        self.latents, self.items, self.tokens = latents, items, tokens

    def batch(self, rng: np.random.Generator, size: int, settings: FlowSettings) -> Batch:
        inputs = []
        for i in rng.choice(len(self.items), size=size):
            item = self.items[i]
            other = self.items[int(rng.integers(len(self.items)))]
            raw = self.latents.raw(other)
            v = int(rng.integers(settings.voice_min, settings.voice_max + 1))
            v = min(v, len(raw))
            start = int(rng.integers(0, len(raw) - v + 1))
            voice = raw[start : start + v]
            inputs.append((voice, self.tokens[item.id], self.latents.normalised(item)))
        return Batch(inputs)


class Ema:
    """An exponential moving average of a module's floating-point state."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for k, v in module.state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v, 1 - self.decay)
            else:
                self.state[k].copy_(v)


def train(
    corpus_dir: str | Path,
    codec_run: str | Path,
    run_dir: str | Path,
    overrides: dict | None = None,
    tokenizer: str | Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    init_from: str | Path | None = None,
) -> dict[str, float]:
    """Trains a new FlowLM run on `codec_run`'s latents of the corpus, or resumes one. A new
    run may start from a trained model's FlowLM (`init_from`, an exported model folder, whose
    tokenizer it then uses; the latents' mean and spread are this codec's); a resumed run
    ignores it."""
    run = runs.start(run_dir, device, threads)
    state, settings, rng = runs.resume(run, FlowSettings, overrides)
    pretrained = init.for_new_run(init_from, state is not None, run.folder)
    if pretrained is not None and tokenizer is None:  # its embedding rows are its pieces
        init_cfg = ModelConfig.load(pretrained[0])
        tokenizer = init_cfg.resolve(init_cfg.flow_lm.lookup_table.tokenizer_path)
    if settings.loss not in ("energy", "mse"):
        raise ValueError(f"--loss: energy or mse, got {settings.loss!r}")
    config = runs.keep_config(
        run, Path(codec_run) / runs.CONFIG if state is None else None, state is not None
    )
    if run.main:
        encode_corpus(corpus_dir, codec_run, run.folder)
        if not (run.folder / TOKENIZER).exists():
            cfg = ModelConfig.load(config)
            texts = [i.text for i in Latents(run.folder).split("train")]
            if tokenizer is not None:
                (run.folder / TOKENIZER).write_bytes(Path(tokenizer).read_bytes())
            else:
                train_tokenizer(texts, run.folder / TOKENIZER, cfg.flow_lm.lookup_table.n_bins)
    if run.distributed:
        torch.distributed.barrier()
    latents = Latents(run.folder)
    cfg = ModelConfig.load(config)
    tok = load_tokenizer(run.folder / TOKENIZER)
    rules = text_rules(cfg)
    usable = [i for i in latents.items if 2 * settings.eos_frames < i.frames <= settings.max_frames]
    tokens = {i.id: token_ids(i.text, tok, rules) for i in usable}
    train_items = [i for i in usable if i.split == "train"]
    val_items = [i for i in usable if i.split == "val"][: settings.val_items] or train_items[:4]
    flow_lm = build(config, latents, settings.seed)
    if pretrained is not None:
        init.copy_weights(
            flow_lm, pretrained[1].flow_lm, f"{init_from}'s FlowLM", keep=("emb_mean", "emb_std")
        )
        log.info("%s starts from %s's FlowLM", run.folder, init_from)
    if flow_lm.flow_net.kind == "lsd":
        raise ValueError(
            f"{config}: flow_lm.flow.type lsd is not trainable here (pointwise, drifting)"
        )
    params = [p for p in flow_lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, betas=(0.9, 0.95), weight_decay=0.01)
    ema = Ema(flow_lm, settings.ema)
    step = 0
    if state is not None:
        flow_lm.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ema.state = state["ema"]
        step = state["step"]
        log.info("resuming %s at step %d", run.folder, step)
    else:
        torch.manual_seed(settings.seed + 1000 + run.rank)
    sampler = Sampler(latents, train_items, tokens)
    val_batch = Sampler(latents, val_items, tokens).batch(
        np.random.default_rng(12345), len(val_items), settings
    )
    metrics = runs.Metrics(run)
    bar = Progress("flow", settings.steps, step) if run.main else None
    last: dict[str, float] = {}
    start, first = time.monotonic(), step
    while step < settings.steps:
        lr = runs.lr_at(step, settings.lr, settings.warmup, settings.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        batch = sampler.batch(rng, settings.batch, settings)
        parts = losses(flow_lm, batch, settings)
        loss = parts["flow"] + settings.eos_weight * parts["eos"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"flow step {step}: loss is {float(loss)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if run.distributed:
            _average_gradients(params, run.world)
        grad = float(nn.utils.clip_grad_norm_(params, settings.clip))
        opt.step()
        ema.update(flow_lm)
        step += 1
        if step % settings.log_every == 0 or step == settings.steps:
            last = runs.mean_across(run, {k: float(v.detach()) for k, v in parts.items()})
            if step % settings.val_every == 0 or step == settings.steps:
                last |= validate(flow_lm, ema, val_batch, settings)
            metrics.write(step=step, lr=lr, grad_norm=grad, **last)
            if bar is not None:
                rate = (step - first) / (time.monotonic() - start)
                bar.update(
                    step,
                    force=step == settings.steps,
                    flow=last["flow"],
                    eos=last["eos"],
                    steps_per_s=rate,
                )
        if step % settings.save_every == 0 or step == settings.steps:
            runs.save(
                run,
                rng,
                step=step,
                settings=asdict(settings),
                model=flow_lm.state_dict(),
                optimizer=opt.state_dict(),
                ema=ema.state,
            )
    if bar is not None:
        bar.close()
    runs.finish(run)
    return last


def _average_gradients(params: list[nn.Parameter], world: int) -> None:
    """The mean gradient over the processes. (DDP's wrapper sees only calls of the wrapped
    module's forward; a loss built from several of its parts is averaged here instead.)"""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad)
        p.grad /= world


@torch.no_grad()
def validate(flow_lm: FlowLM, ema: Ema, batch: Batch, settings: FlowSettings) -> dict[str, float]:
    """The EMA weights' losses on a fixed validation batch (the noise seeded)."""
    live = {k: v.clone() for k, v in flow_lm.state_dict().items()}
    flow_lm.load_state_dict(ema.state)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        parts = losses(flow_lm, batch, settings)
    flow_lm.load_state_dict(live)
    return {f"val_{k}": float(v) for k, v in parts.items()}
