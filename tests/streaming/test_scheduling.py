"""The engine's order of work, on a model that only records what it is asked: the most urgent
first (earliest deadline). Newcomers' texts go in before a speaking stream is stepped unless
its frame is due first; a text goes in whole on every core when that ends before the next
frame is due, else in slices; newcomers' first frames share one step; a stream far enough
ahead waits; a text given whole has its first chunk's state made on the joining thread."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any

import numpy as np
import pytest

from voxlet.plan import ChunkPlan
from voxlet.runtime import engine as engine_module
from voxlet.runtime.engine import FRAME_S, PREFILL_SLICE, Engine, EngineSession


class Recorder:
    """A SpeechModel that records prefills (rows, threads) and steps (batch size)."""

    sliced_prefill = True
    has_voice_cloning = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self._local = threading.local()

    def inference(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def use_threads(self, n: int) -> None:
        self._local.threads = n

    def rng(self, seed: int) -> None:
        return None

    def noise(self, plan: ChunkPlan, rng: Any) -> None:
        return None

    def chunk_state(self, voice: Any, plan: ChunkPlan) -> dict:
        self.calls.append(("state on " + threading.current_thread().name, len(plan.token_ids), 0))
        return {}

    def embed(self, plan: ChunkPlan) -> np.ndarray:
        return np.zeros((len(plan.token_ids), 4), np.float32)

    def prompt(self, rows: np.ndarray, state: Any) -> None:
        self.calls.append(("prompt", len(rows), getattr(self._local, "threads", 1)))

    def prompt_batch(self, jobs: list[tuple[np.ndarray, Any]]) -> None:
        rows = tuple(len(r) for r, _ in jobs)
        self.calls.append(("prompt_batch", rows, getattr(self._local, "threads", 1)))

    def prompt_chunk(self, voice: Any, plan: ChunkPlan) -> dict:
        self.prompt(self.embed(plan), {})
        return {}

    def step_batch(self, latents, states, noises, lsd_steps):
        self.calls.append(("step", len(states), getattr(self._local, "threads", 1)))
        return [(np.zeros((1, 32), np.float32), -10.0) for _ in states]

    def finite(self, latent: Any) -> bool:
        return True


def plan(tokens: int) -> ChunkPlan:
    return ChunkPlan(np.zeros(tokens, np.int64), 100, 1, 0.0, 1e9, 1, None, "ignore")


def session(tokens: int) -> EngineSession:
    s = EngineSession(
        voice=None,
        plans=[plan(tokens)],
        seed=0,
        out=queue.Queue(maxsize=200),
        stop=threading.Event(),
        on_error=lambda e: pytest.fail(f"stream failed: {e!r}"),
    )
    s.rng = None
    return s


def speaking(lead_s: float) -> EngineSession:
    """A stream 10 frames in whose audio so far is `lead_s` ahead of real time."""
    s = session(3)
    s.frames = 10
    s.started = time.monotonic() - (10 * FRAME_S - lead_s)
    return s


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setattr(engine_module, "usable_cores", lambda: 2)
    model = Recorder()
    e = Engine(model)  # type: ignore[arg-type]
    return e, model


def test_newcomers_go_in_whole_together_on_every_core_then_share_one_first_step(engine):
    e, model = engine
    ahead = speaking(lead_s=1.0)
    e._round([ahead])  # its chunk taken and (short) prefilled; stepped
    newcomers = [session(40), session(30)]
    live = [ahead, *newcomers]
    model.calls.clear()
    for _ in range(2):
        e._round(live)
    # both texts whole in one call on two threads (the most urgent first) before anything is
    # stepped; then one step for all
    work = [c for c in model.calls if c[0] in ("prompt_batch", "step")]
    assert work == [("prompt_batch", (40, 30), 2), ("step", 3, 1)]
    assert [s.frames for s in newcomers] == [1, 1]


def test_a_whole_prefill_takes_only_the_texts_that_fit_before_the_next_frame(engine):
    """60 ms before the speaking stream's frame is due (its lead less DECODE_S) at 1 ms a
    token: the most urgent 40-token text goes in whole, the 30-token one does not fit with
    it, a 15-token one does; a one-token text never joins others (its bits alone differ)."""
    e, model = engine
    ahead = speaking(lead_s=0.02)
    e._round([ahead])  # stepped: its next frame due in 0.02 s + a frame - DECODE_S
    newcomers = [session(40), session(30), session(15), session(1)]
    for i, s in enumerate(newcomers):  # the first chunks made when they joined, in this order
        s.joined -= 0.15 + 0.01 * (len(newcomers) - i)  # each due before the speaking one
        s.prepare(model)
    model.calls.clear()
    e._token_s = 1e-3
    e._round([ahead, *newcomers])
    assert model.calls == [("prompt_batch", (40, 15), 2)]


def test_a_speaking_stream_due_first_is_stepped_and_the_text_goes_in_slices(engine):
    e, model = engine
    due = speaking(lead_s=-0.5)  # behind: its next frame is due before the newcomer's first
    e._round([due])
    model.calls.clear()
    newcomer = session(40)
    e._round([due, newcomer])
    assert model.calls[-1] == ("step", 1, 1)  # the speaking stream first
    newcomer.joined -= 1.0  # now the newcomer's first frame is overdue too
    e._round([due, newcomer])
    # its text goes in, a slice at a time: the other's frame is due before it would end
    assert model.calls[-1] == ("prompt", PREFILL_SLICE, 1)


def test_streams_ahead_let_newcomers_first_frames_decode(engine):
    """After a step that made newcomers' first frames the engine waits (at most a frame) for
    the decoder to decode them, unless a speaking stream is due."""
    e, _ = engine
    ahead = speaking(lead_s=1.0)
    newcomer = session(3)
    newcomer.frames = 1
    newcomer.first = engine_module.FirstFrame(2)
    start = time.monotonic()
    threading.Timer(0.03, newcomer.first.decoded.set).start()
    e._let_first_frames_decode([ahead, newcomer])
    assert 0.025 <= time.monotonic() - start < 0.07  # until it was decoded
    late = session(3)
    late.frames = 1
    late.first = engine_module.FirstFrame(2)
    start = time.monotonic()
    e._let_first_frames_decode([speaking(lead_s=-0.5), late])
    assert time.monotonic() - start < 0.02  # a speaking stream is due: no wait


def test_the_first_chunks_state_is_made_on_the_joining_thread(engine):
    e, model = engine
    s = session(40)
    e.join(s)
    try:
        assert s.left.wait(10)
    finally:
        e.close()
    assert model.calls[0] == ("state on MainThread", 40, 0)
    assert ("prompt_batch", (40,), 2) in model.calls  # alone: whole, on every core
    assert s.out.qsize() == 101  # its 100 frames and the end


def test_a_failed_batch_of_prefills_fails_each_of_its_streams_only(engine):
    """One call held several streams' texts: its error is each of theirs (finished, told),
    and a stream outside the batch goes on."""
    e, model = engine

    def broken(jobs):
        raise RuntimeError("prefill broke")

    model.prompt_batch = broken  # type: ignore[method-assign]
    ahead = speaking(lead_s=1.0)
    e._round([ahead])
    errors: list[BaseException] = []
    newcomers = [session(40), session(30)]
    for s in newcomers:
        s.on_error = errors.append
    e._round([ahead, *newcomers])
    assert [str(x) for x in errors] == ["prefill broke", "prefill broke"]
    assert all(s.finished for s in newcomers) and not ahead.finished
    model.calls.clear()
    e._round([ahead, *newcomers])
    assert model.calls == [("step", 1, 1)]  # the speaking stream alone
