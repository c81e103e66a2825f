"""The native FlowLM stack steps several sessions at different positions in one call, each
row with exactly the bits it gets stepped alone (the batched engine's foundation: a session's
output never depends on which others share its batch)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import fixture_path
from voxlet import GenerationOptions
from voxlet.model.backend.native import NativeStack
from voxlet.model.generation import prompt_chunk
from voxlet.model.layers.attention import RingKV
from voxlet.model.layers.rope import rotation

TEXTS = ["Hello.", "A somewhat longer sentence, this one.", "Hi", "Numbers like 42 and 7."]


def sessions(tts, texts):
    voice = tts.voice(str(fixture_path("tiny_voice.safetensors")))
    states = []
    for text in texts:
        [chunk] = tts.chunks(text, GenerationOptions())
        plan = tts.plan(chunk, GenerationOptions(max_frames=8))
        states.append(prompt_chunk(tts.network.flow_lm, voice.state, plan))
    return states


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_rows_stepped_together_have_each_rows_bits_alone(tiny_tts, int8_tts, precision):
    tts = tiny_tts if precision == "fp32" else int8_tts
    flow_lm = tts.network.flow_lm
    stack = flow_lm.transformer.kernel
    assert isinstance(stack, NativeStack)
    attn = flow_lm.transformer.attention(0)
    alone, together = sessions(tts, TEXTS), sessions(tts, TEXTS)
    assert len({s.offset for s in alone}) > 1  # different positions
    x = torch.randn(len(TEXTS), flow_lm.d_model, generator=torch.Generator().manual_seed(0))
    for step in range(3):  # a few steps: the caches grow the same way too
        want = []
        for b, state in enumerate(alone):
            turns = rotation(state.offset, 1, attn.head_dim, attn.max_period)
            want.append(stack(x[b].view(1, 1, -1), state.caches, turns).view(-1))
        turns = torch.cat([rotation(s.offset, 1, attn.head_dim, attn.max_period) for s in together])
        got = stack.step_rows(x, [s.caches for s in together], turns)
        for b in range(len(TEXTS)):
            assert torch.equal(got[b], want[b]), (precision, step, b)
        for a, t in zip(alone, together, strict=True):
            assert a.offset == t.offset
            for ca, ct in zip(a.caches, t.caches, strict=True):
                n = ca.offset
                assert torch.equal(ca.k[:, :, :n], ct.k[:, :, :n])
                assert torch.equal(ca.v[:, :, :n], ct.v[:, :, :n])
        x = torch.stack(want) * 0.5  # the next step's input depends on this one's output


def test_a_full_cache_and_ring_caches_are_refused(tiny_tts):
    flow_lm = tiny_tts.network.flow_lm
    [state] = sessions(tiny_tts, ["Hi"])
    for c in state.caches:
        c.offset = c.capacity
    attn = flow_lm.transformer.attention(0)
    turns = rotation(0, 1, attn.head_dim, attn.max_period)
    x = torch.zeros(1, flow_lm.d_model)
    with pytest.raises(RuntimeError, match="full"):
        flow_lm.transformer.kernel.step_rows(x, [state.caches], turns)
    rings = [RingKV.empty(1, attn.kv_heads, attn.head_dim, 8) for _ in state.caches]
    with pytest.raises(TypeError, match="unbounded"):
        flow_lm.transformer.kernel.step_rows(x, [rings], turns)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_step_batch_gives_every_session_the_bits_of_step(tiny_tts, int8_tts, precision):
    tts = tiny_tts if precision == "fp32" else int8_tts
    flow_lm = tts.network.flow_lm
    alone, together = sessions(tts, TEXTS), sessions(tts, TEXTS)
    g_alone = [torch.Generator().manual_seed(b) for b in range(len(TEXTS))]
    g_together = [torch.Generator().manual_seed(b) for b in range(len(TEXTS))]
    last_a: list = [None] * len(TEXTS)
    last_t: list = [None] * len(TEXTS)
    with torch.no_grad():
        for _ in range(4):
            want = [
                flow_lm.step(last_a[b], s, torch.randn(1, 32, generator=g_alone[b]), 2)
                for b, s in enumerate(alone)
            ]
            noises = [torch.randn(1, 32, generator=g) for g in g_together]
            got = flow_lm.step_batch(last_t, together, noises, 2)
            for (wl, we), (gl, ge) in zip(want, got, strict=True):
                assert torch.equal(wl, gl) and torch.equal(we, ge)
            last_a = [w[0] for w in want]
            last_t = [g[0] for g in got]
