"""How close int8 output stays to fp32 on the same full-size weights: latent and audio SNR.

Temperature 0 (deterministic), a 40-frame random voice prefix, 50 frames. Random weights say
nothing about perceptual quality; they show the numerical distance the int8 path adds. The
random model is chaotic: one flipped activation rounding moves a single latent's SNR by a few
dB, so the first latent is also compared over 8 voice prefixes (mean, min, max).

    .venv/bin/python benches/bench_quality.py
    .venv/bin/python benches/bench_quality.py --model english_2m   # a small layout
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
import numpy as np
import torch

from benches.bench_rtf import SHORT, TOKENIZER, random_weights
from voxlet import TTS, GenerationOptions
from voxlet.model.voice import voice_from_conditioning
from voxlet.registry import official_config


def snr_db(reference: np.ndarray, other: np.ndarray) -> float | str:
    """SNR in dB, or "identical" (JSON has no infinity) where the two are equal."""
    noise = ((reference - other) ** 2).sum()
    if noise == 0:
        return "identical"
    return round(float(10 * np.log10((reference**2).sum() / noise)), 1)


def first_latent(tts: TTS, seed: int) -> np.ndarray:
    """The first latent after the short text, with a random 40-frame voice prefix."""
    opts = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=1, on_no_eos="ignore")
    voice = random_voice(tts, seed)
    return torch.cat(list(tts.latents(SHORT, voice, opts))).numpy()


def random_voice(tts: TTS, seed: int):
    """A random 40-frame voice prefix of the model's width."""
    d = tts.network.flow_lm.d_model
    with torch.no_grad():
        prefix = torch.randn(1, 40, d, generator=torch.Generator().manual_seed(seed)) * 0.1
        return tts.voice(voice_from_conditioning(tts.network.flow_lm, prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="english", help="an official layout (random weights)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    weights = random_weights(args.model)
    opts = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=50, on_no_eos="ignore")
    outputs, voices, decoders, firsts = {}, {}, {}, {}
    for precision in ("fp32", "int8"):
        tts = TTS.load(
            config=official_config(args.model),
            weights=weights,
            tokenizer=TOKENIZER,
            precision=precision,
            backend="native",  # the PyTorch model's tensors are compared below
        )
        voice = random_voice(tts, 0)
        latents = torch.cat(list(tts.latents(SHORT, voice, opts))).numpy()
        firsts[precision] = [first_latent(tts, seed) for seed in range(8)]
        outputs[precision] = (latents, tts.synthesize(SHORT, voice, opts))
        voices[precision] = torch.cat([k.flatten() for k in voice.state.keys]).numpy()
        decoders[precision] = tts.network
    (l32, a32), (l8, a8) = outputs["fp32"], outputs["int8"]
    over_voices = [float(snr_db(a, b)) for a, b in zip(firsts["fp32"], firsts["int8"], strict=True)]
    with torch.no_grad():  # the same fp32 latents through each precision's Mimi decoder
        same = torch.from_numpy(l32).unsqueeze(0)
        decoded = {
            p: net.mimi.decode(net.flow_lm.denormalize(same), net.mimi.init_decoder_state())
            .flatten()
            .numpy()
            for p, net in decoders.items()
        }
    print(
        json.dumps(
            {
                "model": args.model,
                "frames": len(l32),
                "voice_kv_snr_db": snr_db(voices["fp32"], voices["int8"]),
                "first_latent_snr_db": snr_db(l32[:1], l8[:1]),
                "first_latent_snr_db_8_voices_mean": round(float(np.mean(over_voices)), 1),
                "first_latent_snr_db_8_voices_min_max": [
                    round(min(over_voices), 1),
                    round(max(over_voices), 1),
                ],
                "latent_snr_db": snr_db(l32, l8),
                "latent_snr_first_10_frames_db": snr_db(l32[:10], l8[:10]),
                "audio_snr_db": snr_db(a32, a8),
                "mimi_only_audio_snr_db": snr_db(decoded["fp32"], decoded["int8"]),
            }
        )
    )


if __name__ == "__main__":
    main()
