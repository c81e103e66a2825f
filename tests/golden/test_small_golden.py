"""Every golden of the small-variant fixture (`shared/fixtures/small/`: the english_2m / 7m / 18m
layout) reproduced, on both backends: the native kernels (the default) and PyTorch's layers.

Through the public API where the quantity is public (tokens, audio from a cloned voice and from
the reference's voice file, the config's EOS default, latents); through module calls for the
rest (the grouped-query attention probe, the rank table, z, both head types with injected noise,
the context-50 decoder transformer, the long encode and decode). Tolerance as the fixture's
README suggests: atol 2e-5 + rtol 2e-5, integer tensors exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import fixture_path
from tests.golden.test_golden import (
    FORCED,
    TEXT,
    check_decode_probes,
    check_voice_prompt_pipeline,
    close,
)
from voxlet import TTS, GenerationOptions
from voxlet.model.generation import prompt_chunk
from voxlet.model.layers.transformer import TransformerLayer
from voxlet.model.weights import load_cloning_weights

BACKENDS = ("native", "torch")


def load_small(
    backend: str = "native", precision: str = "fp32", config: str = "small_config.yaml"
) -> TTS:
    tts = TTS.load(config=fixture_path(f"small/{config}"), precision=precision, backend=backend)
    load_cloning_weights(tts.network, fixture_path("small/small_model.safetensors"))
    return tts


@pytest.fixture(scope="module")
def g() -> dict[str, torch.Tensor]:
    return load_file(str(fixture_path("small/small_golden.safetensors")))


@pytest.fixture(scope="module", params=BACKENDS)
def tts(request) -> TTS:
    return load_small(request.param)


@pytest.fixture(scope="module", params=BACKENDS)
def drifting(request) -> TTS:
    return load_small(request.param, config="small_config_drifting.yaml")


def test_the_native_backend_serves_every_new_layer():
    network = load_small("native").network
    flow_lm = network.flow_lm
    assert flow_lm.transformer.kernel is not None
    assert flow_lm.flow_net.kernel is not None and not flow_lm.flow_net.timed
    assert flow_lm._z_kernel is not None
    assert network.mimi.decoder_transformer.transformer.kernel is not None
    torch_network = load_small("torch").network
    assert torch_network.flow_lm.transformer.kernel is None
    assert torch_network.flow_lm.flow_net.kernel is None


def test_text_tokens_and_low_rank_embeddings(tts, g):
    (chunk,) = tts.chunks(TEXT, FORCED)
    assert torch.equal(torch.from_numpy(chunk.token_ids).view(1, -1), g["text_tokens"])
    conditioner = tts.network.flow_lm.conditioner
    with torch.no_grad():
        close(conditioner.embed(g["text_tokens"]), g["text_embeddings_rank"])
        close(tts.network.flow_lm.embed_tokens(g["text_tokens"]), g["text_embeddings"])


def test_grouped_query_attention_probe(tts, g):
    attn = tts.network.flow_lm.transformer.attention(0)
    assert (attn.num_heads, attn.kv_heads, attn.head_dim, attn.attn_dim) == (6, 2, 16, 96)
    with torch.no_grad():
        out = attn(g["attn_probe_in"], attn.init_state(1, 7))
    close(out, g["attn_probe_out"])


def test_mimi_encode_short_and_long(tts, g):
    mimi = tts.network.mimi
    with torch.no_grad():
        close(mimi.encode(g["audio_prompt"].view(1, 1, -1)), g["mimi_encoded"])
        close(mimi.encode(g["mimi_long_encode_in"]), g["mimi_long_encode_out"])


def test_voice_prompt_pipeline(tts, g):
    check_voice_prompt_pipeline(tts, g)


def test_cloned_voice_caches_only_the_kv_heads(tts, g):
    cloned = tts.voice(str(fixture_path("prompt.wav"))).state.to_tensors()
    exported = load_file(str(fixture_path("small/small_voice.safetensors")))
    assert set(cloned) == set(exported)
    for i in range(2):
        name = f"transformer.layers.{i}.self_attn"
        assert list(cloned[f"{name}/cache"].shape) == [2, 1, 15, 2, 16]
        close(cloned[f"{name}/cache"], g[f"voice_state.{name}.cache"])
        close(cloned[f"{name}/cache"], exported[f"{name}/cache"])
        assert torch.equal(cloned[f"{name}/offset"], g[f"voice_state.{name}.offset"])
        assert torch.equal(cloned[f"{name}/pad"], g[f"voice_state.{name}.pad"])


def test_time_free_flow_heads(tts, drifting, g):
    c, x = g["flow_net_probe_c"], g["flow_net_probe_x"]
    for model in (tts, drifting):
        flow = model.network.flow_lm.flow_net
        assert not flow.timed and len(flow.time_embed) == 0
        with torch.no_grad():
            close(flow(c, x=x), g["flow_net_probe_v"])
            close(flow.untimed(c, x), g["flow_net_probe_v"])
    with torch.no_grad():
        close(tts.network.flow_lm.flow_net.sample(c, x, 8), g["flow_net_probe_pointwise"])
        close(drifting.network.flow_lm.flow_net.sample(c, x, 8), g["flow_net_probe_v"])


def _steps(model: TTS, noise: torch.Tensor | None):
    """The 12 forced steps: out_norm hidden, z, EOS logits and latents; `noise` (12, 32)
    replaces the sampler's draw at each step (None: temperature 0, x0 = 0)."""
    voice = model.voice(str(fixture_path("prompt.wav")))
    (chunk,) = model.chunks(TEXT, FORCED)
    plan = model.plan(chunk, FORCED)
    flow_lm = model.network.flow_lm
    hidden, zs, eos, latents = [], [], [], []
    with torch.no_grad():
        state = prompt_chunk(flow_lm, voice.state, plan)
        latent = None
        for i in range(12):
            x0 = torch.zeros(1, 32) if noise is None else noise[i : i + 1]
            if noise is None:
                h = flow_lm.hidden(latent, state)
                z = flow_lm.project(h)
                hidden.append(h)
                zs.append(z)
                eos.append(flow_lm.out_eos(z)[:, 0])
                latent = flow_lm.flow_net.sample(z, x0, plan.lsd_steps)
            else:
                latent, logit = flow_lm.step(latent, state, x0, plan.lsd_steps)
                eos.append(logit)
            latents.append(latent)
    return hidden, zs, eos, torch.stack(latents, 1), state.offset


def test_generation_steps_read_z(tts, g):
    hidden, zs, eos, latents, offset = _steps(tts, None)
    close(torch.cat(hidden), g["step_hidden"])
    close(torch.cat(zs), g["step_z"])
    close(torch.cat(eos), g["eos_logits"])
    close(latents, g["latents"])
    assert offset == int(g["flow_lm_offset_after"])


def test_injected_noise_tells_the_head_types_apart(tts, drifting, g):
    _, _, eos, latents, _ = _steps(tts, g["noisy_x0"])
    close(latents, g["noisy_latents"])
    close(torch.cat(eos), g["noisy_eos_logits"])
    _, _, eos, latents, _ = _steps(drifting, g["noisy_x0"])
    close(latents, g["drifting_noisy_latents"])
    close(torch.cat(eos), g["drifting_noisy_eos_logits"])


def test_latents_through_public_api(tts, g):
    voice = tts.voice(str(fixture_path("prompt.wav")))
    latents = torch.stack(list(tts.latents(TEXT, voice, FORCED)), 1)
    close(latents, g["latents"])
    close(tts.network.flow_lm.denormalize(latents), g["latents_denorm"])


def test_mimi_decode_probes_and_context_50(tts, g):
    mimi = tts.network.mimi
    assert mimi.decoder_transformer.transformer.attention(0).context == 50
    check_decode_probes(mimi, g)
    with torch.no_grad():
        # 20 frames, stage by stage: upsample, decoder transformer (320 steps, context 50), all
        state = mimi.init_decoder_state()
        upsampled, transformed, audio = [], [], []
        for i in range(20):
            latent = g["mimi_long_decode_in"][:, i : i + 1]
            x = mimi.quantizer.output_proj(latent.transpose(1, 2))
            x = mimi.upsample.convtr(x, state.upsample)
            upsampled.append(x)
            x = mimi.decoder_transformer(x, state.transformer)
            transformed.append(x)
            audio.append(mimi.decoder(x, state.seanet))
        close(torch.cat(upsampled, -1), g["mimi_long_decode_upsampled"])
        close(torch.cat(transformed, -1), g["mimi_long_decode_transformer_out"])
        close(torch.cat(audio, -1), g["mimi_long_decode_out"])


def test_audio_through_public_api(tts, g):
    frames = list(tts.stream(TEXT, str(fixture_path("prompt.wav")), FORCED))
    audio = np.concatenate(frames)
    close(audio, g["audio_generate_api"])
    close(audio[120:], g["audio"][120:])
    voice_file = str(fixture_path("small/small_voice.safetensors"))
    close(tts.synthesize(TEXT, voice_file, FORCED), g["audio_generate_api"])


def test_the_configs_eos_default_applies(tts, g):
    """No threshold given: the config's -1.0 stops at step 6 + 3 = 9 frames."""
    opts = GenerationOptions(temperature=0.0)
    audio = tts.synthesize(TEXT, str(fixture_path("small/small_voice.safetensors")), opts)
    assert audio.shape == (17280,)
    close(audio, g["audio_generate_api_eos"])


def test_one_layer_is_a_grouped_query_layer(tts):
    layer = tts.network.flow_lm.transformer.layers[0]
    assert isinstance(layer, TransformerLayer)
    assert list(layer.self_attn.in_proj.weight.shape) == [160, 56]
    assert list(layer.self_attn.out_proj.weight.shape) == [56, 96]
    assert list(layer.linear1.weight.shape) == [80, 56]
