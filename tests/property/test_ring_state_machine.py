"""The Rust ring behaves like a bounded deque: FIFO, nothing lost or duplicated, overruns counted.

One state machine drives push/pop from a single thread; a second test runs a writer and a reader
thread with hypothesis-chosen chunk sizes and checks every sample arrives once, in order.
"""

from __future__ import annotations

import collections
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from voxlet.audio import PcmPipeline

CAPACITY = 37


class RingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ring = PcmPipeline(24000, 24000, CAPACITY)
        self.model: collections.deque[float] = collections.deque()
        self.next_value = 0.0
        self.dropped = 0

    @rule(n=st.integers(0, 60))
    def push(self, n):
        data = np.arange(self.next_value, self.next_value + n, dtype=np.float32)
        self.next_value += n
        fits = min(n, CAPACITY - len(self.model))
        assert self.ring.push(data, timeout_s=0.0) == fits
        self.model.extend(data[:fits].tolist())
        self.dropped += n - fits

    @rule(m=st.integers(0, 60))
    def pop(self, m):
        out = np.full(m, -1.0, dtype=np.float32)
        n = self.ring.pop_into(out)
        expected = [self.model.popleft() for _ in range(min(m, len(self.model)))]
        assert n == len(expected)
        assert out[:n].tolist() == expected

    @invariant()
    def counts(self):
        assert self.ring.available_frames == len(self.model)
        assert self.ring.available_frames + self.ring.free_frames == CAPACITY
        assert self.ring.overruns == self.dropped


TestRing = RingMachine.TestCase
TestRing.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@settings(max_examples=25, deadline=None)
@given(
    writes=st.lists(st.integers(1, 500), min_size=1, max_size=40),
    read_size=st.integers(1, 300),
    capacity=st.integers(1, 700),
)
def test_two_threads_lose_nothing(writes, read_size, capacity):
    ring = PcmPipeline(24000, 24000, capacity)
    total = sum(writes)
    received: list[np.ndarray] = []

    def reader():
        out = np.empty(read_size, dtype=np.float32)
        while not ring.is_finished:
            n = ring.pop_into(out)
            received.append(out[:n].copy())

    thread = threading.Thread(target=reader)
    thread.start()
    start = 0
    for n in writes:
        assert ring.push(np.arange(start, start + n, dtype=np.float32)) == n
        start += n
    ring.finish()
    thread.join(timeout=30)
    assert not thread.is_alive()
    got = np.concatenate(received) if received else np.zeros(0, np.float32)
    assert np.array_equal(got, np.arange(total, dtype=np.float32))
    assert ring.overruns == 0
