"""Every golden tensor of the reference (pocket-tts 4.0.1) reproduced through voxlet's API.

Tolerance: atol 2e-5 + rtol 2e-5 (the fixture README's suggestion, ~10x the fp32 thread noise and
tight enough to catch exact-vs-tanh GELU); integer tensors exactly. Run for the fp32 checkpoint
against tiny_golden and the bf16 checkpoint (upcast on load) against tiny_golden_bf16.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import fixture_path, load_tiny
from voxlet import TTS, GenerationOptions
from voxlet.audio import read_audio
from voxlet.model.generation import prompt_chunk
from voxlet.model.voice import end_on_pause

TEXT = "Hello world. This is a test."
ATOL = RTOL = 2e-5
FORCED = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=12, on_no_eos="ignore")

CASES = {
    "fp32": ("tiny_model.safetensors", "tiny_golden.safetensors"),
    "bf16": ("tiny_model_bf16.safetensors", "tiny_golden_bf16.safetensors"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request) -> tuple[TTS, dict[str, torch.Tensor]]:
    weights, goldens = CASES[request.param]
    return load_tiny(weights, encoder=True), load_file(str(fixture_path(goldens)))


def close(got, expected: torch.Tensor) -> None:
    got_t = torch.as_tensor(np.asarray(got) if not isinstance(got, torch.Tensor) else got)
    assert tuple(got_t.shape) == tuple(expected.shape) or got_t.numel() == expected.numel()
    torch.testing.assert_close(
        got_t.reshape(expected.shape).float(), expected, atol=ATOL, rtol=RTOL
    )


def test_prompt_wav_reads_as_reference(case):
    _, g = case
    samples, rate = read_audio(fixture_path("prompt.wav"))
    assert rate == 24000 and samples.shape == (24000, 1)
    assert torch.equal(torch.from_numpy(samples[:, 0]), g["audio_prompt"][0])


def test_text_tokens_and_embeddings(case):
    tts, g = case
    (chunk,) = tts.chunks(TEXT, FORCED)
    assert torch.equal(torch.from_numpy(chunk.token_ids).view(1, -1), g["text_tokens"])
    with torch.no_grad():
        close(tts.network.flow_lm.embed_tokens(g["text_tokens"]), g["text_embeddings"])


def test_mimi_encode(case):
    tts, g = case
    with torch.no_grad():
        close(tts.network.mimi.encode(g["audio_prompt"].view(1, 1, -1)), g["mimi_encoded"])
        close(tts.network.mimi.encode(g["mimi_long_encode_in"]), g["mimi_long_encode_out"])


def test_voice_prompt_pipeline(case):
    check_voice_prompt_pipeline(*case)


def check_voice_prompt_pipeline(tts: TTS, g: dict[str, torch.Tensor]) -> None:
    """end_on_pause, the Mimi encoding of the trimmed prompt, and its conditioning."""
    audio = end_on_pause(g["audio_prompt"][0])
    close(audio, g["voice_prompt_audio"])
    with torch.no_grad():
        latents = tts.network.mimi.encode(audio.view(1, 1, -1))
        close(latents, g["voice_prompt_latents"])
        close(tts.network.flow_lm.voice_conditioning(latents), g["voice_conditioning"])


def test_voice_state_from_audio(case):
    tts, g = case
    cloned = tts.voice(str(fixture_path("prompt.wav"))).state.to_tensors()
    for i in range(2):
        name = f"transformer.layers.{i}.self_attn"
        close(cloned[f"{name}/cache"], g[f"voice_state.{name}.cache"])
        assert torch.equal(cloned[f"{name}/offset"], g[f"voice_state.{name}.offset"])
        assert torch.equal(cloned[f"{name}/pad"], g[f"voice_state.{name}.pad"])


def test_reference_voice_file_matches_cloned_voice(tiny_tts):
    """tiny_voice.safetensors was exported by the reference from the fp32 model."""
    exported = load_file(str(fixture_path("tiny_voice.safetensors")))
    cloned = tiny_tts.voice(str(fixture_path("prompt.wav"))).state.to_tensors()
    assert set(cloned) == set(exported)
    for key, value in exported.items():
        if value.is_floating_point():
            close(cloned[key], value)
        else:
            assert torch.equal(cloned[key], value)


def test_flow_net_probes(case):
    tts, g = case
    c, x, ones = g["flow_net_probe_c"], g["flow_net_probe_x"], torch.ones(4, 1)
    flow = tts.network.flow_lm.flow_net
    with torch.no_grad():
        close(flow(c, ones * 0, ones, x), g["flow_net_probe_v"])
        close(flow(c, ones * 0.25, ones * 0.75, x), g["flow_net_probe2_v"])


def test_generation_steps(case):
    """Hidden states, EOS logits, latents and the final offset of the 12 forced steps."""
    tts, g = case
    voice = tts.voice(str(fixture_path("prompt.wav")))
    (chunk,) = tts.chunks(TEXT, FORCED)
    plan = tts.plan(chunk, FORCED)
    flow_lm = tts.network.flow_lm
    hidden, eos, latents = [], [], []
    with torch.no_grad():
        state = prompt_chunk(flow_lm, voice.state, plan)
        latent = None
        for _ in range(12):
            h = flow_lm.hidden(latent, state)
            hidden.append(h)
            eos.append(flow_lm.out_eos(h)[:, 0])
            # temperature 0: x0 = 0 and one LSD step, latent = v(h, s=0, t=1, x0=0)
            latent = flow_lm.flow_net(h, torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 32))
            latents.append(latent)
    close(torch.cat(hidden), g["step_hidden"])
    close(torch.cat(eos), g["eos_logits"])
    close(torch.stack(latents, 1), g["latents"])
    assert state.offset == int(g["flow_lm_offset_after"])


def test_latents_through_public_api(case):
    tts, g = case
    voice = tts.voice(str(fixture_path("prompt.wav")))
    latents = torch.stack(list(tts.latents(TEXT, voice, FORCED)), 1)
    close(latents, g["latents"])
    close(tts.network.flow_lm.denormalize(latents), g["latents_denorm"])


def check_decode_probes(mimi, g: dict[str, torch.Tensor]) -> None:
    """The 5-frame decode probe in one call and frame by frame, from fresh states."""
    with torch.no_grad():
        close(
            mimi.decode(g["mimi_decode_probe_in"], mimi.init_decoder_state()),
            g["mimi_decode_probe_out"],
        )
        state = mimi.init_decoder_state()
        framewise = [mimi.decode(g["mimi_decode_probe_in"][:, i : i + 1], state) for i in range(5)]
        close(torch.cat(framewise, -1), g["mimi_decode_probe_out_framewise"])


def test_mimi_decode_probes(case):
    tts, g = case
    mimi = tts.network.mimi
    check_decode_probes(mimi, g)
    with torch.no_grad():
        state = mimi.init_decoder_state()
        long = [mimi.decode(g["mimi_long_decode_in"][:, i : i + 1], state) for i in range(20)]
        close(torch.cat(long, -1), g["mimi_long_decode_out"])


def test_audio_through_public_api(case):
    tts, g = case
    frames = list(tts.stream(TEXT, str(fixture_path("prompt.wav")), FORCED))
    assert all(f.shape == (1920,) and f.dtype == np.float32 for f in frames)
    audio = np.concatenate(frames)
    close(audio, g["audio_generate_api"])
    close(audio[120:], g["audio"][120:])  # the fade-in touches only the first 5 ms
    assert not np.allclose(audio[:120], g["audio"][:120].numpy())


def test_reference_voice_file_gives_the_same_audio(tiny_tts, golden):
    audio = tiny_tts.synthesize(TEXT, str(fixture_path("tiny_voice.safetensors")), FORCED)
    close(audio, golden["audio_generate_api"])


def test_audio_with_eos(case):
    tts, g = case
    opts = GenerationOptions(temperature=0.0, eos_threshold=-4.4)
    audio = tts.synthesize(TEXT, str(fixture_path("prompt.wav")), opts)
    assert audio.shape == (17280,)  # 9 frames: EOS at step 6, then frames_after_eos 3
    close(audio, g["audio_generate_api_eos"])
