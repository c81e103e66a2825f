"""`voxlet train codec`: the Mimi-style VAE, trained on a corpus's audio.

The network is voxlet's own `Mimi` (the same module that decodes at run time), plus one
training-only convolution beside the downsample that gives the posterior's log-variance: the
encoder's output is the posterior mean, a latent is mean + sigma * noise, and the decoder turns
it back into audio. Losses: multi-resolution STFT and log-mel L1 against the input, plus a
small KL term. Random crops of a whole number of frames; every crop starts the encoder and
decoder from a fresh (zero) state, as a stream does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voxlet.config import MimiConfig, ModelConfig
from voxlet.constants import SAMPLE_RATE_HZ
from voxlet.model.layers.conv import ConvState, StreamingConv1d
from voxlet.model.mimi import Mimi
from voxlet.train import init, losses
from voxlet.train import run as runs
from voxlet.train.dataset import Corpus
from voxlet.train.init import init_mimi
from voxlet.train.progress import Progress
from voxlet.train.settings import CodecSettings

log = logging.getLogger("voxlet.train")


class CodecModel(nn.Module):
    """voxlet's Mimi plus the posterior's log-variance head (training only, not exported)."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.mimi = Mimi(cfg)
        stride = cfg.steps_per_frame
        self.logvar = StreamingConv1d(
            cfg.seanet.dimension, cfg.inner_dim, 2 * stride, stride, bias=True, pad_mode="replicate"
        )

    def encode(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, N), N a whole number of frames -> posterior mean and log-variance (B, 32, T)."""
        m = self.mimi
        x = m.encoder(audio)
        x = m.encoder_transformer(x, m.encoder_transformer.transformer.init_state(x.shape[0]))
        return m.downsample.conv(x, ConvState()), self.logvar(x, ConvState())

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 32, T) -> (B, N) audio, from a fresh decoder state."""
        m = self.mimi
        return m.decode(latents.transpose(1, 2), m.init_decoder_state(latents.shape[0]))[:, 0]

    def forward(self, audio: torch.Tensor, sample: bool = True):
        mean, logvar = self.encode(audio.unsqueeze(1))
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean
        return self.decode(z), mean, logvar


def build(config: str | Path, seed: int) -> CodecModel:
    """The initial network: the same weights in every process for a seed, made without
    touching the global random state (a resumed run has just restored it)."""
    cfg = ModelConfig.load(config)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CodecModel(cfg.mimi)
        init_mimi(model.mimi, cfg.mimi)
        conv = model.logvar.conv
        assert conv.bias is not None
        nn.init.zeros_(conv.weight)
        nn.init.constant_(conv.bias, -4.0)  # sigma e^-2 to start
    return model


def _validation(corpus: Corpus, settings: CodecSettings) -> torch.Tensor:
    """The first val utterances' first 2 s (zero-padded): the same batch every time."""
    items = corpus.split("val")[: settings.val_items] or corpus.split("train")[:4]
    n = 25 * 1920
    out = np.zeros((len(items), n), dtype=np.float32)
    for row, u in enumerate(items):
        a = corpus.audio(u)[:n]
        out[row, : len(a)] = a
    return torch.from_numpy(out)


@torch.no_grad()
def evaluate(model: CodecModel, audio: torch.Tensor) -> dict[str, float]:
    """Mel and STFT losses of the mean round trip, the latents' spread and the posterior's."""
    was = model.training
    model.eval()
    y, mean, logvar = model(audio, sample=False)
    model.train(was)
    return {
        "val_mel": float(losses.mel_loss(y, audio)),
        "val_stft": float(losses.stft_loss(y, audio)),
        "latent_std": float(mean.std()),
        "posterior_sigma": float((0.5 * logvar).exp().mean()),
    }


def train(
    corpus_dir: str | Path,
    run_dir: str | Path,
    config: str | Path | None,
    overrides: dict | None = None,
    device: str = "cpu",
    threads: int | None = None,
    init_from: str | Path | None = None,
) -> dict[str, float]:
    """Trains a new codec run, or resumes one with its saved settings; `overrides` (settings
    by name) apply either way. A new run may start from a trained model's codec (`init_from`,
    an exported model folder; its layout unless `config` is given); a resumed run ignores it.
    Returns the last logged metrics."""
    run = runs.start(run_dir, device, threads)
    corpus = Corpus(corpus_dir)
    items = corpus.split("train")
    state, settings, rng = runs.resume(run, CodecSettings, overrides)
    pretrained = init.for_new_run(init_from, state is not None, run.folder)
    if pretrained is not None and config is None:
        config = pretrained[0]  # the model's layout
    config = runs.keep_config(run, config, resumed=state is not None)
    model = build(config, settings.seed)
    if pretrained is not None:
        init.copy_weights(model.mimi, pretrained[1].mimi, f"{init_from}'s codec")
        log.info("%s starts from %s's codec", run.folder, init_from)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.8, 0.99))
    step, seen_s = 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, seen_s = state["step"], state["seen_s"]
        log.info("resuming %s at step %d", run.folder, step)
    else:
        torch.manual_seed(settings.seed + 1000 + run.rank)  # noise differs per process
    model.to(run.device)
    net: nn.Module = model
    if run.distributed:
        net = nn.parallel.DistributedDataParallel(model)
    metrics = runs.Metrics(run)
    val_audio = _validation(corpus, settings).to(run.device)
    crop = settings.crop_frames * 1920
    bar = Progress("codec", settings.steps, step) if run.main else None
    last: dict[str, float] = {}
    start, seen_before = time.monotonic(), seen_s
    while step < settings.steps:
        lr = runs.lr_at(step, settings.lr, settings.warmup, settings.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        x = torch.from_numpy(corpus.crops(items, settings.batch, crop, rng)).to(run.device)
        y, mean, logvar = net(x)
        l_stft, l_mel = losses.stft_loss(y, x), losses.mel_loss(y, x)
        l_kl = losses.kl(mean, logvar)
        loss = l_stft + settings.mel_weight * l_mel + settings.kl_weight * l_kl
        if not torch.isfinite(loss):
            raise FloatingPointError(f"codec step {step}: loss is {float(loss)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad = float(nn.utils.clip_grad_norm_(model.parameters(), settings.clip))
        opt.step()
        step += 1
        seen_s += settings.batch * crop * run.world / SAMPLE_RATE_HZ
        if step % settings.log_every == 0 or step == settings.steps:
            values = {
                k: float(v.detach()) for k, v in (("stft", l_stft), ("mel", l_mel), ("kl", l_kl))
            }
            last = runs.mean_across(run, values)
            elapsed = time.monotonic() - start
            if step % settings.val_every == 0 or step == settings.steps:
                last |= evaluate(model, val_audio)
            metrics.write(step=step, lr=lr, grad_norm=grad, audio_h=seen_s / 3600, **last)
            if bar is not None:
                bar.update(
                    step,
                    force=step == settings.steps,
                    mel=last["mel"],
                    stft=last["stft"],
                    audio_x=(seen_s - seen_before) / elapsed,
                )
        if step % settings.save_every == 0 or step == settings.steps:
            corpus.refresh()  # a corpus still being made has grown
            items = corpus.split("train")
            runs.save(
                run,
                rng,
                step=step,
                seen_s=seen_s,
                settings=asdict(settings),
                model=model.state_dict(),
                optimizer=opt.state_dict(),
            )
    if bar is not None:
        bar.close()
    runs.finish(run)
    return last


def load_run(run_dir: str | Path) -> tuple[CodecModel, int]:
    """A run's latest codec (eval mode) and its step."""
    folder = Path(run_dir)
    state = torch.load(folder / runs.CHECKPOINT, map_location="cpu", weights_only=False)
    model = build(folder / runs.CONFIG, 0)
    model.load_state_dict(state["model"])
    return model.eval(), int(state["step"])


@torch.no_grad()
def round_trip(model: CodecModel, audio: np.ndarray) -> np.ndarray:
    """24 kHz audio -> posterior mean latents -> audio, zero-padded to whole frames."""
    n = len(audio)
    x = torch.from_numpy(np.pad(audio, (0, -n % 1920)).astype(np.float32))
    y, _, _ = model(x.unsqueeze(0), sample=False)
    return y[0, :n].numpy()
