"""Latency counts at three significant digits: each worker's added up equal one process's
counts of every latency, and the exporter's buckets derive from them exactly."""

from __future__ import annotations

import random

import pytest

from harness.load.latency_counts import LatencyCounts, three_digits
from harness.load.latency_histogram import LatencyHistogram
from model.buckets import LATENCY_BUCKETS


def _latencies(seed: int, n: int) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    lanes, kinds = ("sync", "async"), ("checkout", "fulfillment")
    # From 10 microseconds to 100 s, and every exporter bound itself, where rounding matters.
    values = [10 ** rng.uniform(-5, 2) for _ in range(n)] + list(LATENCY_BUCKETS) + [0.0, 1.5004, 0.30000001]
    return [(rng.choice(lanes), rng.choice(kinds), v) for v in values]


def test_workers_counts_added_up_equal_one_process_counting_every_latency() -> None:
    latencies = _latencies(1, 5000)
    whole = LatencyCounts()
    workers = [LatencyCounts() for _ in range(3)]
    for i, (lane, kind, seconds) in enumerate(latencies):
        whole.observe(lane, kind, seconds)
        workers[i % 3].observe(lane, kind, seconds)
    merged = LatencyCounts.merged(w.snapshot() for w in workers)
    assert merged.series() == whole.series()
    for lane, kind in whole.series():
        assert merged.values(lane, kind) == whole.values(lane, kind)
        assert merged.count(lane, kind) == sum(1 for la, k, _ in latencies if (la, k) == (lane, kind))
    # Each worker's own counts stay its own: the merge is per worker, then added.
    assert sum(w.count("sync", "checkout") for w in workers) == whole.count("sync", "checkout")
    # At three significant digits: each value counted is its latency rounded up to three digits.
    expected: dict[float, int] = {}
    for lane, kind, seconds in latencies:
        if (lane, kind) == ("sync", "checkout"):
            expected[three_digits(seconds)] = expected.get(three_digits(seconds), 0) + 1
    assert whole.values("sync", "checkout") == sorted(expected.items())


def test_three_digits_rounds_up_within_one_percent() -> None:
    rng = random.Random(2)
    for _ in range(20000):
        seconds = 10 ** rng.uniform(-5, 3)
        rounded = three_digits(seconds)
        assert seconds <= rounded <= seconds * 1.01
        assert float(f"{rounded:.2e}") == rounded  # three significant digits, nothing more
    assert three_digits(1.5004) == 1.51
    assert three_digits(0.3) == 0.3
    assert three_digits(999.5) == 1000.0


def test_the_exporters_buckets_derived_from_the_counts_equal_counting_each_latency() -> None:
    latencies = _latencies(3, 5000)
    exact = LatencyHistogram(LATENCY_BUCKETS)
    counts = LatencyCounts()
    for lane, kind, seconds in latencies:
        exact.observe(lane, kind, seconds)
        counts.observe(lane, kind, seconds)
    derived = counts.histogram(LATENCY_BUCKETS)
    for lane, kind in exact.series():
        assert derived.buckets(lane, kind) == exact.buckets(lane, kind)
        assert derived.sum_s(lane, kind) == pytest.approx(exact.sum_s(lane, kind))


def test_bounds_of_more_than_three_digits_are_refused() -> None:
    with pytest.raises(ValueError, match=r"more than three significant digits can not be derived: \[1.234\]"):
        LatencyCounts().histogram((1.0, 1.234))
