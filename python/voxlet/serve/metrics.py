"""Server metrics in the Prometheus text format (`GET /metrics`), counted on the event loop.

- voxlet_sessions_active, voxlet_sessions_waiting: gauges (admission).
- voxlet_requests_total{route, status}: counter.
- voxlet_first_audio_seconds: histogram, request start to first audio bytes.
- voxlet_audio_seconds_total / voxlet_generation_seconds_total: audio made and the wall time
  of the sessions that made it; their ratio is the aggregate x real time
  (voxlet_real_time_factor).
- voxlet_underruns_total: sessions whose audio fell behind real time after a 200 ms head start
  (a listener playing as it arrives would have heard a gap).
"""

from __future__ import annotations

import time
from collections import Counter

from voxlet.serve.admission import Admission

FIRST_AUDIO_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
PREBUFFER_S = 0.2


class Metrics:
    def __init__(self, admission: Admission):
        self._admission = admission
        self.requests: Counter[tuple[str, int]] = Counter()
        self.first_audio = [0] * (len(FIRST_AUDIO_BUCKETS) + 1)
        self.first_audio_sum = 0.0
        self.audio_s = 0.0
        self.generation_s = 0.0
        self.underruns = 0

    def request(self, route: str, status: int) -> None:
        self.requests[(route, status)] += 1

    def session(self) -> SessionClock:
        return SessionClock(self)

    def render(self) -> str:
        a = self._admission
        factor = self.audio_s / self.generation_s if self.generation_s else 0.0
        lines = [
            "# TYPE voxlet_sessions_active gauge",
            f"voxlet_sessions_active {a.active}",
            "# TYPE voxlet_sessions_waiting gauge",
            f"voxlet_sessions_waiting {a.waiting}",
            "# TYPE voxlet_requests_total counter",
        ]
        for (route, status), n in sorted(self.requests.items()):
            lines.append(f'voxlet_requests_total{{route="{route}",status="{status}"}} {n}')
        lines.append("# TYPE voxlet_first_audio_seconds histogram")
        total = 0
        for bound, n in zip((*FIRST_AUDIO_BUCKETS, float("inf")), self.first_audio, strict=True):
            total += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'voxlet_first_audio_seconds_bucket{{le="{le}"}} {total}')
        lines += [
            f"voxlet_first_audio_seconds_sum {self.first_audio_sum:.6f}",
            f"voxlet_first_audio_seconds_count {total}",
            "# TYPE voxlet_audio_seconds_total counter",
            f"voxlet_audio_seconds_total {self.audio_s:.3f}",
            "# TYPE voxlet_generation_seconds_total counter",
            f"voxlet_generation_seconds_total {self.generation_s:.3f}",
            "# TYPE voxlet_real_time_factor gauge",
            f"voxlet_real_time_factor {factor:.3f}",
            "# TYPE voxlet_underruns_total counter",
            f"voxlet_underruns_total {self.underruns}",
        ]
        return "\n".join(lines) + "\n"


class SessionClock:
    """One session's timing: first audio, audio made against wall time, underrun."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics
        self._start = time.monotonic()
        self._first: float | None = None
        self._audio_s = 0.0
        self._behind = False

    def audio(self, seconds: float) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = now
            wait = now - self._start
            m = self._metrics
            i = next((k for k, b in enumerate(FIRST_AUDIO_BUCKETS) if wait <= b), -1)
            m.first_audio[i] += 1
            m.first_audio_sum += wait
        elif not self._behind and now - self._first > self._audio_s + PREBUFFER_S:
            self._behind = True  # a listener would have run dry before this audio came
        self._audio_s += seconds

    def close(self) -> None:
        m = self._metrics
        m.audio_s += self._audio_s
        m.generation_s += time.monotonic() - self._start
        m.underruns += int(self._behind)
