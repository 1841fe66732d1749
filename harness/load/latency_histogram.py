"""Latency histograms per (lane, kind) counted from the measured seconds themselves.

Locust keeps response times rounded to two significant digits (1.54 s becomes 1.5 s), which
moves a latency just above a bucket bound into the bucket below it; this one counts each
latency as measured.  Workers send :meth:`LatencyHistogram.snapshot` to the master, which
adds them up (bucket counts add exactly).

>>> h = LatencyHistogram((0.5, 1.5, 1.85))
>>> h.observe("sync", "checkout", 1.54)
>>> h.buckets("sync", "checkout")
[('0.5', 0), ('1.5', 0), ('1.85', 1), ('+Inf', 1)]
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import HistogramMetricFamily

__all__ = ["LatencyHistogram", "Snapshot"]

# One series as sent between processes (msgpack-friendly): lane, kind, per-bucket counts
# (the last one above every bound), sum of seconds.
Snapshot = list[tuple[str, str, list[int], float]]


@dataclass
class _Series:
    counts: list[int]
    total_s: float = 0.0


@dataclass
class LatencyHistogram:
    """Bucket counts with Prometheus' ``le`` bounds (a latency equal to a bound is in it)."""

    bounds: tuple[float, ...]
    _series: dict[tuple[str, str], _Series] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"histogram bounds must be strictly increasing, got {self.bounds}")

    def _at(self, lane: str, kind: str) -> _Series:
        series = self._series.get((lane, kind))
        if series is None:
            series = self._series[(lane, kind)] = _Series(counts=[0] * (len(self.bounds) + 1))
        return series

    def observe(self, lane: str, kind: str, seconds: float) -> None:
        series = self._at(lane, kind)
        series.counts[bisect_left(self.bounds, seconds)] += 1
        series.total_s += seconds

    def series(self) -> list[tuple[str, str]]:
        """The (lane, kind) pairs observed, sorted."""
        return sorted(self._series)

    def buckets(self, lane: str, kind: str) -> list[tuple[str, int]]:
        """Cumulative counts per ``le`` bound, ``+Inf`` last, as Prometheus exposes them."""
        counts = self._at(lane, kind).counts
        out, running = [], 0
        for bound, count in zip(self.bounds, counts, strict=False):
            running += count
            out.append((str(bound), running))
        out.append(("+Inf", running + counts[-1]))
        return out

    def sum_s(self, lane: str, kind: str) -> float:
        return self._at(lane, kind).total_s

    def metric_family(
        self, name: str, documentation: str, labels: tuple[str, str] = ("lane", "kind")
    ) -> HistogramMetricFamily:
        """The histogram as one Prometheus family, its two keys labelled ``labels``."""
        family = HistogramMetricFamily(name, documentation, labels=list(labels))
        for lane, kind in self.series():
            family.add_metric([lane, kind], self.buckets(lane, kind), self.sum_s(lane, kind))
        return family

    def snapshot(self) -> Snapshot:
        return [(lane, kind, list(s.counts), s.total_s) for (lane, kind), s in sorted(self._series.items())]

    @classmethod
    def merged(cls, bounds: Sequence[float], snapshots: Iterable[Snapshot]) -> LatencyHistogram:
        """One histogram adding up every snapshot (each process's own, or what workers sent)."""
        total = cls(tuple(bounds))
        for snapshot in snapshots:
            for lane, kind, counts, total_s in snapshot:
                total.add(lane, kind, counts, total_s)
        return total

    def add(self, lane: str, kind: str, counts: Sequence[int], total_s: float) -> None:
        """Per-bucket counts (the last one above every bound) and their sum, added to a series."""
        if len(counts) != len(self.bounds) + 1:
            raise ValueError(
                f"a histogram of {len(counts) - 1} bounds can not be added to one of {len(self.bounds)}"
            )
        series = self._at(lane, kind)
        series.counts = [a + b for a, b in zip(series.counts, counts, strict=True)]
        series.total_s += total_s
