"""How close int8 output stays to fp32 on the same full-size weights: latent and audio SNR.

Temperature 0 (deterministic), a 40-frame random voice prefix, 50 frames. Random weights say
nothing about perceptual quality; they show the numerical distance the int8 path adds.

    .venv/bin/python benches/bench_quality.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from benches.bench_rtf import ROOT, SHORT, TOKENIZER
from voxlet import TTS, GenerationOptions
from voxlet.model.voice import voice_from_conditioning
from voxlet.registry import official_config


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((reference - other) ** 2).sum()))


def main() -> None:
    torch.set_num_threads(1)
    weights = ROOT / "bench-out" / "english-random.safetensors"
    if not Path(weights).is_file():
        raise SystemExit(f"{weights} is missing: run benches/bench_rtf.py once first")
    opts = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=50, on_no_eos="ignore")
    outputs = {}
    for precision in ("fp32", "int8"):
        tts = TTS.load(
            config=official_config("english"),
            weights=weights,
            tokenizer=TOKENIZER,
            precision=precision,
        )
        with torch.no_grad():
            prefix = torch.randn(1, 40, 1024, generator=torch.Generator().manual_seed(0)) * 0.1
            voice = tts.voice(voice_from_conditioning(tts.network.flow_lm, prefix))
        latents = torch.cat(list(tts.latents(SHORT, voice, opts))).numpy()
        outputs[precision] = (latents, tts.synthesize(SHORT, voice, opts))
    (l32, a32), (l8, a8) = outputs["fp32"], outputs["int8"]
    print(
        json.dumps(
            {
                "frames": len(l32),
                "latent_snr_db": round(snr_db(l32, l8), 1),
                "latent_snr_first_10_frames_db": round(snr_db(l32[:10], l8[:10]), 1),
                "audio_snr_db": round(snr_db(a32, a8), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
