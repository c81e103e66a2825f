"""The torch-free backend (`backend="torch-free"`: `voxlet.native`, the checkpoint read straight
into voxlet's kernels) reproduces every golden of both fixtures: the standard layout (fp32 and
the bf16 file widened on load) and the small layouts (pointwise and drifting heads), through
the public API where the quantity is public and through the native parts for the rest. Same
tolerance as the PyTorch path's golden tests (atol 2e-5 + rtol 2e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.conftest import fixture_path
from voxlet import TTS, GenerationOptions

TEXT = "Hello world. This is a test."
FORCED = GenerationOptions(temperature=0.0, eos_threshold=1e9, max_frames=12, on_no_eos="ignore")
CASES = {
    "tiny-fp32": ("tiny_config.yaml", "tiny_model.safetensors", "tiny_golden.safetensors"),
    "tiny-bf16": (
        "tiny_config.yaml",
        "tiny_model_bf16.safetensors",
        "tiny_golden_bf16.safetensors",
    ),
    "small": ("small/small_config.yaml", None, "small/small_golden.safetensors"),
}
VOICE_FILES = {"tiny": "tiny_voice.safetensors", "small": "small/small_voice.safetensors"}


def exported_voice(kind: str, g) -> str:
    """The reference's voice file of the fixture's model; for the bf16 file (whose voice the
    reference did not export: tiny_voice is the float32 model's) the prompt, cloned."""
    same_model = np.array_equal(
        load_file(str(fixture_path(VOICE_FILES[kind])))["transformer.layers.0.self_attn/cache"],
        g["voice_state.transformer.layers.0.self_attn.cache"],
    )
    return str(fixture_path(VOICE_FILES[kind] if same_model else "prompt.wav"))


def close(got, expected) -> None:
    got = np.asarray(got, np.float32).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=2e-5)


def load(config: str, weights: str | None = None, precision: str = "fp32") -> TTS:
    path = None if weights is None else fixture_path(weights)
    return TTS.load(
        config=fixture_path(config), weights=path, backend="torch-free", precision=precision
    )


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    config, weights, goldens = CASES[request.param]
    kind = request.param.split("-")[0]
    return load(config, weights), load_file(str(fixture_path(goldens))), kind


@pytest.fixture(scope="module")
def drifting() -> TTS:
    return load("small/small_config_drifting.yaml")


def test_it_is_the_torch_free_model(case):
    tts, _, _ = case
    assert tts.network is None
    assert type(tts.model).__module__ == "voxlet.native.speech"


def test_audio_through_public_api_from_the_voice_file_and_from_cloning(case):
    tts, g, kind = case
    close(tts.synthesize(TEXT, exported_voice(kind, g), FORCED), g["audio_generate_api"])
    frames = list(tts.stream(TEXT, str(fixture_path("prompt.wav")), FORCED))
    close(np.concatenate(frames), g["audio_generate_api"])


def test_the_eos_rule(case):
    tts, g, kind = case
    voice_file = exported_voice(kind, g)
    # tiny: threshold -4.4 given; small: the config's own default (-1.0)
    opts = GenerationOptions(temperature=0.0, eos_threshold=-4.4 if kind == "tiny" else None)
    audio = tts.synthesize(TEXT, voice_file, opts)
    assert audio.shape == (17280,)
    close(audio, g["audio_generate_api_eos"])


def test_latents_and_eos_logits_step_by_step(case):
    tts, g, _ = case
    voice = tts.voice(str(fixture_path("prompt.wav")))
    close(np.concatenate(list(tts.latents(TEXT, voice, FORCED))), g["latents"][0])
    model, flow_lm = tts.model, tts.model.flow_lm
    (chunk,) = tts.chunks(TEXT, FORCED)
    np.testing.assert_array_equal(chunk.token_ids, g["text_tokens"][0])
    close(flow_lm.embed_tokens(chunk.token_ids), g["text_embeddings"][0])
    state = model.prompt_chunk(voice.state, tts.plan(chunk, FORCED))
    latent, hidden, eos = None, [], []
    for _ in range(12):
        hidden.append(flow_lm.hidden(latent, state))
        state.offset -= 1  # the same position again, through the whole step
        latent, logit = flow_lm.step(latent, state, np.zeros((1, 32), np.float32), 1)
        eos.append(logit)
    close(np.concatenate(hidden), g["step_hidden"])
    close(np.array(eos), g["eos_logits"])
    assert state.offset == int(g["flow_lm_offset_after"][0])


def test_cloning_gives_the_reference_voice_state(case, tmp_path):
    tts, g, kind = case
    voice = tts.voice(str(fixture_path("prompt.wav")))
    saved = tmp_path / "cloned.safetensors"
    tts.save_voice(voice, saved)
    cloned = load_file(str(saved))
    exported = load_file(str(fixture_path(VOICE_FILES[kind])))
    assert set(cloned) == set(exported)
    for key, want in exported.items():
        assert cloned[key].dtype == want.dtype
        if want.dtype == np.int64:
            np.testing.assert_array_equal(cloned[key], want)
        else:
            close(cloned[key], g[f"voice_state.{key.replace('/', '.')}"])
    again = tts.voice(str(saved)).state  # and it reads back as it was written
    for a, b in zip(again.keys + again.values, voice.state.keys + voice.state.values, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mimi_encode_and_decode_probes(case):
    tts, g, _ = case
    model = tts.model
    encoder = model.encoder()
    close(encoder.encode(g["audio_prompt"][0]), g["mimi_encoded"])
    close(encoder.encode(g["voice_prompt_audio"][0]), g["voice_prompt_latents"])
    close(encoder.encode(g["mimi_long_encode_in"].reshape(-1)), g["mimi_long_encode_out"])
    decoder = model.decoder
    probe = g["mimi_decode_probe_in"][0]
    close(decoder.decode(probe, decoder.init_state()), g["mimi_decode_probe_out"])
    state = decoder.init_state()
    framewise = [decoder.decode(probe[i : i + 1], state) for i in range(len(probe))]
    close(np.concatenate(framewise), g["mimi_decode_probe_out_framewise"])
    state = decoder.init_state()
    long = [decoder.decode(f[None], state) for f in g["mimi_long_decode_in"][0]]
    close(np.concatenate(long), g["mimi_long_decode_out"])
    close(model.flow_lm.voice_conditioning(g["voice_prompt_latents"][0]), g["voice_conditioning"])


def test_flow_heads(case, drifting):
    tts, g, kind = case
    c, x = g["flow_net_probe_c"], g["flow_net_probe_x"]
    flow = tts.model.flow_lm.flow
    if kind == "tiny":  # lsd: times given
        close(flow.velocity(c, 0.0, 1.0, x), g["flow_net_probe_v"])
        close(flow.velocity(c, 0.25, 0.75, x), g["flow_net_probe2_v"])
        return
    close(flow.velocity(c, None, None, x), g["flow_net_probe_v"])
    close(flow.sample(c, x, 8), g["flow_net_probe_pointwise"])
    close(drifting.model.flow_lm.flow.sample(c, x, 8), g["flow_net_probe_v"])


def _noisy_steps(tts: TTS, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    voice = tts.voice(str(fixture_path(VOICE_FILES["small"])))
    (chunk,) = tts.chunks(TEXT, FORCED)
    state = tts.model.prompt_chunk(voice.state, tts.plan(chunk, FORCED))
    latent, latents, eos = None, [], []
    for i in range(12):
        latent, logit = tts.model.flow_lm.step(latent, state, noise[i : i + 1], 1)
        latents.append(latent)
        eos.append(logit)
    return np.concatenate(latents), np.array(eos)


def test_injected_noise_tells_the_small_head_types_apart(drifting):
    tts = load("small/small_config.yaml")
    g = load_file(str(fixture_path("small/small_golden.safetensors")))
    close(tts.model.flow_lm.table[g["text_tokens"][0]], g["text_embeddings_rank"][0])
    latents, eos = _noisy_steps(tts, g["noisy_x0"])
    close(latents, g["noisy_latents"][0])
    close(eos, g["noisy_eos_logits"])
    latents, eos = _noisy_steps(drifting, g["noisy_x0"])
    close(latents, g["drifting_noisy_latents"][0])
    close(eos, g["drifting_noisy_eos_logits"])
