"""Latencies per (lane, kind) kept to three significant digits, as HdrHistogram keeps them:
counts that add up exactly across processes, so each worker sends its own and the master
adds them, whatever the load.

A latency is rounded *up* to its three-digit value (1.5004 s is counted at 1.51 s). So a
latency is at most a bound of three significant digits exactly when its rounded value is,
and the exporter's fixed-bound histogram (``model.buckets``, every bound of at most three
digits) is derived from these counts without a latency changing bucket: one definition,
merged the same way.

>>> counts = LatencyCounts()
>>> counts.observe("sync", "checkout", 1.5004)
>>> counts.observe("sync", "checkout", 1.5)
>>> counts.histogram((1.5, 2.0)).buckets("sync", "checkout")
[('1.5', 1), ('2.0', 2), ('+Inf', 2)]
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.load.latency_histogram import LatencyHistogram

__all__ = ["LOWEST_S", "CountsSnapshot", "LatencyCounts", "three_digits"]

# Below a microsecond a latency is counted at one (HdrHistogram's lowest discernible value).
LOWEST_S = 1e-6
_LOWEST_KEY = -6 * 1000 + 100  # 1.00e-6

# One series as sent between processes (msgpack-friendly, no integer map keys): lane, kind,
# [key, count] pairs, sum of seconds.
CountsSnapshot = list[tuple[str, str, list[tuple[int, int]], float]]


def _value(key: int) -> float:
    """The float nearest the decimal ``m * 10**(e - 2)`` that ``key = e * 1000 + m`` stands for
    (the same float as that decimal written as a literal, so 0.3's key is exactly 0.3)."""
    exponent, mantissa = divmod(key, 1000)
    shift = exponent - 2
    return float(mantissa * 10**shift) if shift >= 0 else mantissa / 10**-shift


def _step(key: int, by: int) -> int:
    """The next (``by`` 1) or previous (``by`` -1) three-digit value's key."""
    exponent, mantissa = divmod(key, 1000)
    mantissa += by
    if mantissa == 1000:
        exponent, mantissa = exponent + 1, 100
    elif mantissa == 99:
        exponent, mantissa = exponent - 1, 999
    return exponent * 1000 + mantissa


def _key(seconds: float) -> int:
    """The key of the least three-digit value at or above ``seconds``."""
    if not seconds > LOWEST_S:  # NaN too: a latency that is not one is counted lowest
        return _LOWEST_KEY
    exponent = math.floor(math.log10(seconds))
    key = exponent * 1000 + min(999, max(100, math.ceil(seconds / 10.0 ** (exponent - 2))))
    # The float arithmetic above may be one off either way: settle it by exact comparisons.
    while _value(key) < seconds:
        key = _step(key, 1)
    while _value(_step(key, -1)) >= seconds:
        key = _step(key, -1)
    return key


def three_digits(seconds: float) -> float:
    """``seconds`` rounded up to three significant digits, as counted.

    >>> three_digits(1.5004), three_digits(0.3), three_digits(0.0)
    (1.51, 0.3, 1e-06)
    """
    return _value(_key(seconds))


@dataclass
class _Series:
    counts: dict[int, int] = field(default_factory=dict)
    total_s: float = 0.0


@dataclass
class LatencyCounts:
    """Counts of latencies at three significant digits, and their exact sum, per (lane, kind)."""

    _series: dict[tuple[str, str], _Series] = field(default_factory=dict)

    def _at(self, lane: str, kind: str) -> _Series:
        series = self._series.get((lane, kind))
        if series is None:
            series = self._series[(lane, kind)] = _Series()
        return series

    def observe(self, lane: str, kind: str, seconds: float) -> None:
        series = self._at(lane, kind)
        key = _key(seconds)
        series.counts[key] = series.counts.get(key, 0) + 1
        series.total_s += seconds

    def series(self) -> list[tuple[str, str]]:
        """The (lane, kind) pairs observed, sorted."""
        return sorted(self._series)

    def count(self, lane: str, kind: str) -> int:
        series = self._series.get((lane, kind))
        return sum(series.counts.values()) if series else 0

    def values(self, lane: str, kind: str) -> list[tuple[float, int]]:
        """(three-digit value, count) pairs, smallest first."""
        series = self._series.get((lane, kind))
        return [(_value(k), n) for k, n in sorted(series.counts.items())] if series else []

    def snapshot(self) -> CountsSnapshot:
        series = sorted(self._series.items())
        return [(lane, kind, sorted(s.counts.items()), s.total_s) for (lane, kind), s in series]

    @classmethod
    def merged(cls, snapshots: Iterable[CountsSnapshot]) -> LatencyCounts:
        """One set of counts adding up every snapshot (each worker's, and this process's)."""
        total = cls()
        for snapshot in snapshots:
            for lane, kind, pairs, total_s in snapshot:
                series = total._at(lane, kind)
                for key, count in pairs:
                    series.counts[key] = series.counts.get(key, 0) + count
                series.total_s += total_s
        return total

    def histogram(self, bounds: Sequence[float]) -> LatencyHistogram:
        """The counts in fixed ``le`` buckets, exact for bounds of at most three significant
        digits (ValueError for any other: a latency could land in the wrong bucket)."""
        inexact = [b for b in bounds if three_digits(b) != b]
        if inexact:
            raise ValueError(f"bounds of more than three significant digits can not be derived: {inexact}")
        out = LatencyHistogram(tuple(bounds))
        for (lane, kind), series in sorted(self._series.items()):
            buckets = [0] * (len(bounds) + 1)
            for key, count in series.counts.items():
                buckets[bisect_left(out.bounds, _value(key))] += count
            out.add(lane, kind, buckets, series.total_s)
        return out
