from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.load.latency_histogram import LatencyHistogram
from model import metric_names as names
from model.buckets import LATENCY_BUCKETS

NAME = names.LOCUST_REQUEST_DURATION


class _Exporter:
    """What the Locust exporter yields for the histogram: the family built from the log's times."""

    def __init__(self, histogram: LatencyHistogram) -> None:
        self.histogram = histogram

    def collect(self) -> Iterator[Any]:
        yield self.histogram.metric_family(NAME, "Latency from intended start.")


def _scrape(histogram: LatencyHistogram) -> dict[tuple[str, str, str], float]:
    registry = CollectorRegistry()
    registry.register(_Exporter(histogram))
    samples: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == f"{NAME}_bucket":
                key = (sample.labels["lane"], sample.labels["kind"], sample.labels["le"])
                samples[key] = sample.value
            elif sample.name in (f"{NAME}_sum", f"{NAME}_count"):
                samples[(sample.labels["lane"], sample.labels["kind"], sample.name)] = sample.value
    return samples


def test_a_latency_just_above_a_bound_is_counted_above_it_not_where_locust_rounds_it() -> None:
    # Locust keeps 1540 ms as round(1540, -2) = 1500 ms, which a histogram rebuilt from its
    # dict counts under le=1.5; the shopper waited longer than 1.5 s.
    assert 1.5 in LATENCY_BUCKETS and 1.85 in LATENCY_BUCKETS
    histogram = LatencyHistogram(LATENCY_BUCKETS)
    histogram.observe("sync", "checkout", 1.54)
    histogram.observe("sync", "checkout", 1.234)
    scraped = _scrape(histogram)
    assert scraped[("sync", "checkout", "1.25")] == 1  # 1.234 s
    assert scraped[("sync", "checkout", "1.5")] == 1  # still only 1.234 s
    assert scraped[("sync", "checkout", "1.85")] == 2
    assert scraped[("sync", "checkout", "+Inf")] == 2
    assert scraped[("sync", "checkout", f"{NAME}_count")] == 2
    assert scraped[("sync", "checkout", f"{NAME}_sum")] == pytest.approx(2.774)


def test_a_latency_equal_to_a_bound_is_in_that_bucket() -> None:
    histogram = LatencyHistogram(LATENCY_BUCKETS)
    histogram.observe("async", "fulfillment", 1.5)
    assert dict(histogram.buckets("async", "fulfillment"))["1.5"] == 1
    assert dict(histogram.buckets("async", "fulfillment"))["1.25"] == 0


def test_workers_snapshots_add_up_to_the_histogram_of_every_latency() -> None:
    latencies = [0.004, 0.1, 0.1001, 1.54, 15.31, 61.0, 0.3, 2.0]
    whole = LatencyHistogram(LATENCY_BUCKETS)
    workers = [LatencyHistogram(LATENCY_BUCKETS) for _ in range(3)]
    for i, seconds in enumerate(latencies):
        whole.observe("sync", "checkout", seconds)
        workers[i % 3].observe("sync", "checkout", seconds)
    workers[1].observe("async", "checkout_retry", 0.5)
    whole.observe("async", "checkout_retry", 0.5)
    merged = LatencyHistogram.merged(LATENCY_BUCKETS, [w.snapshot() for w in workers])
    assert merged.snapshot() == whole.snapshot()
    assert merged.series() == [("async", "checkout_retry"), ("sync", "checkout")]


def test_snapshots_of_other_bounds_are_refused() -> None:
    other = LatencyHistogram((0.1, 1.0))
    other.observe("sync", "checkout", 0.5)
    with pytest.raises(ValueError, match="a histogram of 2 bounds can not be added to one of"):
        LatencyHistogram.merged(LATENCY_BUCKETS, [other.snapshot()])


def test_unsorted_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        LatencyHistogram((1.0, 0.5))
