"""The torch-free model in the engine: streams stepped and decoded together give the bits each
gives alone (its own seeded noise, its own caches, `forward_rows` rows equal to a step alone,
`SeanetDecoder.forward_batch` a stream's samples as alone), text is
prefilled in slices with the bits of one prefill, seeded noise repeats within the path and a
clamp holds."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import fixture_path
from tests.engine_cases import OPTS, TEXTS, VOICE, all_at_once
from voxlet import TTS, GenerationOptions
from voxlet._native import KernelError
from voxlet.plan import ChunkPlan


@pytest.fixture(scope="module")
def free() -> TTS:
    return TTS.load(config=fixture_path("tiny_config.yaml"), backend="torch-free")


def test_streams_at_once_give_their_own_bits(free):
    solo = [free.synthesize(t, VOICE, o) for t, o in zip(TEXTS, OPTS, strict=True)]
    assert all(np.isfinite(a).all() and np.abs(a).max() > 0 for a in solo)
    engine = free.engine()
    try:
        together = all_at_once(free, engine=engine)
        assert engine.rows > engine.steps  # some steps took several streams' rows
        assert engine.decoder.groups > engine.decoder.batches  # and decodes several streams'
    finally:
        engine.close()
    for a, b in zip(together, solo, strict=True):
        assert np.array_equal(a, b)


def test_a_prefill_in_slices_gives_the_bits_of_one(free):
    model = free.model
    voice = free.voice(VOICE).state
    opts = GenerationOptions()
    (chunk,) = free.chunks("one two three four five six seven eight nine ten " * 3, opts)
    plan = free.plan(chunk, opts)
    assert len(plan.token_ids) > 20
    whole = model.prompt_chunk(voice, plan)
    sliced = model.chunk_state(voice, plan)
    rows = model.embed(plan)
    for start in range(0, len(rows), 7):
        model.prompt(rows[start : start + 7], sliced)
    assert whole.offset == sliced.offset
    for a, b in zip(whole.keys + whole.values, sliced.keys + sliced.values, strict=True):
        np.testing.assert_array_equal(a[:, : whole.offset], b[:, : whole.offset])


def test_texts_prefilled_together_give_each_the_bits_of_one_alone(free):
    """`prompt_batch`: several streams' texts in one pass over the weights (the engine's
    newcomers), each state as its own prefill makes it; a one-token text among others is
    refused (its rows alone are quantized otherwise)."""
    model = free.model
    voice = free.voice(VOICE).state
    opts = GenerationOptions()
    plans = [free.plan(c, opts) for t in TEXTS for c in free.chunks(t, opts)]
    assert len({len(p.token_ids) for p in plans}) > 1
    alone = [model.prompt_chunk(voice, p) for p in plans]
    together = [model.chunk_state(voice, p) for p in plans]
    model.prompt_batch([(model.embed(p), s) for p, s in zip(plans, together, strict=True)])
    for a, b in zip(alone, together, strict=True):
        assert a.offset == b.offset
        for x, y in zip(a.keys + a.values, b.keys + b.values, strict=True):
            np.testing.assert_array_equal(x[:, : a.offset], y[:, : a.offset])
    states = [model.chunk_state(voice, p) for p in plans[:2]]
    rows = [model.embed(plans[0]), model.embed(plans[1])[:1]]
    with pytest.raises(KernelError, match="rows of a sequence among several"):
        model.prompt_batch(list(zip(rows, states, strict=True)))


def test_batched_calls_refuse_a_sequence_without_room_and_advance_nothing(free):
    flow_lm = free.model.flow_lm
    stack, d = flow_lm.stack, flow_lm.d_model
    roomy, full = flow_lm.init_state(8), flow_lm.init_state(3)
    full.offset = 2  # one position left, two rows
    with pytest.raises(RuntimeError, match="KV cache of sequence 1 full: 4 positions > capacity 3"):
        stack.forward_spans([np.zeros((2, d), np.float32)] * 2, [roomy, full])
    full.offset = 3
    with pytest.raises(RuntimeError, match="KV cache of sequence 1 full: 4 positions > capacity 3"):
        stack.forward_rows(np.zeros((2, d), np.float32), [roomy, full])
    assert (roomy.offset, full.offset) == (0, 3)  # neither call advanced a cache


def test_seeded_noise_repeats_and_the_clamp_holds(free):
    opts = GenerationOptions(temperature=0.7, seed=5)
    first = free.synthesize(TEXTS[0], VOICE, opts)
    assert np.array_equal(first, free.synthesize(TEXTS[0], VOICE, opts))
    other = free.synthesize(TEXTS[0], VOICE, opts.replace(seed=6))
    assert other.shape != first.shape or not np.array_equal(other, first)
    plan = ChunkPlan(np.zeros(3, np.int64), 10, 1, 4.0, 0.0, 1, 0.5, "ignore")
    rng = free.model.rng(1)
    draws = np.concatenate([free.model.noise(plan, rng) for _ in range(200)])
    assert draws.dtype == np.float32 and draws.shape == (200, 32)
    assert np.abs(draws).max() <= 0.5 and draws.std() > 0.2  # clamped, not collapsed


def test_a_decode_batch_gives_each_stream_its_samples_alone(free):
    model = free.model
    rng = np.random.default_rng(3)
    head, *groups = [
        [rng.standard_normal((1, 32)).astype(np.float32) for _ in range(n)] for n in (1, 1, 3, 2)
    ]

    def started():  # a state with a history: each stream's own carried rows
        state = model.decoder_state()
        model.decode(head, state)
        return state

    alone = [model.decode(group, started()) for group in groups]
    for threads in (1, 2):
        model.use_threads(threads)
        got = model.decode_batch([(group, started()) for group in groups])
        for a, b in zip(got, alone, strict=True):
            assert np.array_equal(a, b)
    model.use_threads(1)


def test_forward_batch_refuses_a_state_twice_and_a_missing_one(free):
    from voxlet._native import KernelError

    seanet = free.model.decoder.seanet
    state = free.model.decoder_state().seanet
    rows = np.zeros((2, free.model.decoder.width), np.float32)
    with pytest.raises(KernelError, match="state given twice"):
        seanet.forward_batch([rows, rows], [state, state])
    with pytest.raises(KernelError, match="2 inputs but 1 states"):
        seanet.forward_batch([rows, rows], [state])
    with pytest.raises(KernelError, match=r"xs\[1\] must be C-contiguous"):
        other = free.model.decoder_state().seanet
        seanet.forward_batch([rows, np.zeros((4, rows.shape[1]), np.float32)[::2]], [state, other])
