"""The load generator's own health: is it sending the arrivals when they are due?

Four figures per generator process, taken over windows of about a second into a
:class:`harness.records.generator.GeneratorSample`: the send lag of its arrivals (``start -
intended_start``), how late its event loop fires a timer, its CPU share, and its arrivals due
against those sent.  The computations are pure functions; :class:`GeneratorHealth` adds up
what the journeys tell it (one append and two additions per arrival sent, no more), and the
locustfile's sampling greenlet feeds it timer readings and takes the samples.

    >>> cpu_share(CpuReading(cpu_s=1.0, wall_s=10.0), CpuReading(cpu_s=1.5, wall_s=11.0))
    0.5
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from harness.load.latency_histogram import LatencyHistogram
from harness.records.generator import GeneratorSample
from model.buckets import SEND_LAG_BUCKETS

__all__ = [
    "CpuReading",
    "GeneratorHealth",
    "cpu_share",
    "never_sent",
    "window_percentile",
]


@dataclass(frozen=True, kw_only=True)
class CpuReading:
    """The process's CPU seconds (every thread) and a monotonic wall clock, read together."""

    cpu_s: float
    wall_s: float

    @classmethod
    def now(cls) -> CpuReading:
        return cls(cpu_s=time.process_time(), wall_s=time.monotonic())


def cpu_share(before: CpuReading, after: CpuReading) -> float:
    """CPU time over wall time between two readings: 1.0 is one core busy all along."""
    wall = after.wall_s - before.wall_s
    return max(0.0, after.cpu_s - before.cpu_s) / wall if wall > 0 else 0.0


def window_percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank ``q``-percentile of one window's values; None for an empty window.

    The analysis' own (``harness.analysis.estimates.percentile``) sits above this package.

    >>> window_percentile([0.3, 0.1, 0.2], 0.99), window_percentile([], 0.99)
    (0.3, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def never_sent(*, due: int, sent: int, dropped: int) -> int:
    """Arrivals due that were neither sent nor dropped: once the load has stopped, never sent.

    >>> never_sent(due=10, sent=7, dropped=1)
    2
    """
    return max(0, due - sent - dropped)


class GeneratorHealth:
    """One generator process's health as it accumulates, taken as a sample per window."""

    def __init__(self, worker: str, *, reading: CpuReading, now: float) -> None:
        self.worker = worker
        # Cumulative, like the request histogram: it spans every test of the process.
        self.send_lag = LatencyHistogram(SEND_LAG_BUCKETS)
        self.reset(reading=reading, now=now)

    def reset(self, *, reading: CpuReading, now: float) -> None:
        """A new test: counts from zero, a new window."""
        self.stopped = False  # the test's last sample is taken: none after it
        self.sent = 0
        self.dropped = 0
        self._lags: list[float] = []
        self._loop_lag_max_s = 0.0
        self._reading = reading
        self._window_start = now

    def on_sent(self, lane: str, lag_s: float) -> None:
        """An arrival's first request went out ``lag_s`` after its intended start."""
        self.sent += 1
        self._lags.append(lag_s)
        self.send_lag.observe(self.worker, lane, lag_s)

    def on_dropped(self) -> None:
        self.dropped += 1

    def on_timer(self, late_s: float) -> None:
        """A timer fired ``late_s`` after it was due (the event loop was busy or blocked)."""
        self._loop_lag_max_s = max(self._loop_lag_max_s, late_s)

    def sample(self, *, now: float, reading: CpuReading, due: int, stopped: bool) -> GeneratorSample:
        """The window since the last sample, which starts the next one."""
        lags = self._lags
        sample = GeneratorSample(
            worker=self.worker,
            t=round(now, 4),
            window_s=max(now - self._window_start, 1e-6),
            sends=len(lags),
            send_lag_p99_s=window_percentile(lags, 0.99),
            send_lag_max_s=max(lags) if lags else None,
            loop_lag_max_s=self._loop_lag_max_s,
            cpu_share=cpu_share(self._reading, reading),
            due=due,
            sent=self.sent,
            dropped=self.dropped,
            never_sent=never_sent(due=due, sent=self.sent, dropped=self.dropped) if stopped else 0,
            stopped=stopped,
        )
        self._lags = []
        self._loop_lag_max_s = 0.0
        self._reading, self._window_start = reading, now
        self.stopped = stopped
        return sample
