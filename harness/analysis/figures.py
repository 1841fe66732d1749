"""A lane's figures over a window of the run: checkouts, errors, waits, goodput.

Latency figures are the time each shopper waited, from the arrival's intended start (so a
stall counts in full) to the answer, a failure's included (``of successes`` asks for
successful ones only); error rates are over every checkout attempt; goodput is successful
checkouts per second by the time they completed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from harness.analysis.estimates import (
    Estimate,
    count_rate_interval,
    mean_interval,
    percentile_interval,
    proportion_interval,
)
from harness.analysis.inputs import Row

__all__ = ["QUANTILES", "LaneFigures", "format_figure", "goodput_series", "lane_figures"]

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True, kw_only=True)
class LaneFigures:
    """One lane's checkouts (and fulfilments) over a window of intended starts.

    A latency is the time the shopper waited, from the intended start to the answer: a failed
    request counts as the time until its failure, a success-only figure is asked for by name.
    """

    requests: int
    errors: int
    waits: tuple[float, ...]  # every checkout: seconds from intended start to the answer
    latencies: tuple[float, ...]  # successful checkouts only
    fulfillment_waits: tuple[float, ...]  # every order followed: until fulfilled, failed or given up
    fulfillments: tuple[float, ...]  # fulfilled orders only
    seconds: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else math.nan

    def samples(self, metric: str, successes_only: bool = False) -> tuple[float, ...]:
        if metric == "checkout":
            return self.latencies if successes_only else self.waits
        return self.fulfillments if successes_only else self.fulfillment_waits

    def estimate(self, metric: str, stat: str | None, successes_only: bool = False) -> Estimate:
        """The figure with its 95% interval (see :mod:`harness.analysis.estimates`)."""
        if metric == "error_rate":
            return proportion_interval(self.errors, self.requests)
        if metric in ("throughput", "goodput"):
            return count_rate_interval(self.requests - self.errors, self.seconds)
        values = self.samples(metric, successes_only)
        if stat == "max":
            # the slowest of these very requests: a fact about them, not an estimate
            top = max(values, default=math.nan)
            return (
                Estimate(top, top, top, len(values)) if values else Estimate(math.nan, -math.inf, math.inf, 0)
            )
        if stat == "mean":
            return mean_interval(values)
        return percentile_interval(values, QUANTILES[stat or "p50"])

    def stat(self, metric: str, stat: str | None, successes_only: bool = False) -> float:
        return self.estimate(metric, stat, successes_only).value


def lane_figures(rows: Iterable[Row], lane: str, start: float, end: float) -> LaneFigures:
    """Figures for arrivals intended in [start, end)."""
    mine = [r for r in rows if r.lane == lane and start <= r.intended < end]
    checkouts = [r for r in mine if r.kind == "checkout"]
    followed = [r for r in mine if r.kind == "fulfillment"]
    return LaneFigures(
        requests=len(checkouts),
        errors=sum(1 for r in checkouts if not r.ok),
        waits=tuple(r.latency for r in checkouts),
        latencies=tuple(r.latency for r in checkouts if r.ok),
        fulfillment_waits=tuple(r.latency for r in followed),
        fulfillments=tuple(r.latency for r in followed if r.ok),
        seconds=max(end - start, 0.0),
    )


def goodput_series(rows: Iterable[Row], lane: str, end: float, step: float = 1.0) -> list[float]:
    """Successful checkouts per second, by completion time, from 0 to ``end``."""
    buckets = [0.0] * max(1, math.ceil(end / step))
    for r in rows:
        if r.lane == lane and r.kind == "checkout" and r.ok and 0 <= r.end < end:
            buckets[int(r.end // step)] += 1.0 / step
    return buckets


def format_figure(metric: str | None, value: float) -> str:
    """A figure as the verdicts show it: ``0.412s``, ``5.0%``, ``9.80/s``, ``no data``."""
    if math.isnan(value):
        return "no data"
    if math.isinf(value):
        return "unbounded"
    if metric in ("checkout", "fulfillment"):
        return f"{value:.3f}s"
    if metric == "error_rate":
        return f"{value:.1%}"
    return f"{value:.2f}/s"
