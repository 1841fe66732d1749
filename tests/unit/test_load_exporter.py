"""The generator's exporter, read through a registry of its own, with a fake Locust view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from harness.load.exporter import LoadCollector
from harness.load.request_log import RequestLog
from model import metric_names as names
from model.scenario import LoadSpec, Stage


@dataclass(frozen=True)
class Entry:
    name: str
    num_requests: int
    num_failures: int


@dataclass(frozen=True)
class Stats:
    entries: Mapping[tuple[str, str], Entry]


@dataclass(frozen=True)
class Runner:
    state: str
    user_count: int


@dataclass(frozen=True)
class View:
    stats: Stats
    runner: Runner | None = None


def _registry(view: View, log: RequestLog) -> CollectorRegistry:
    load = LoadSpec(lanes=("sync", "async"), stages=(Stage(name="s", duration=3600.0, rate=7.0),))
    registry = CollectorRegistry()
    registry.register(LoadCollector(view, load, log))
    return registry


def test_counts_by_lane_and_kind_and_the_recorded_latencies(tmp_path: Path) -> None:
    entries = {
        ("sync checkout", "POST"): Entry("sync checkout", 10, 2),
        ("async arrival dropped", "POST"): Entry("async arrival dropped", 3, 3),
        ("async checkout retry", "POST"): Entry("async checkout retry", 4, 1),
        ("Aggregated", ""): Entry("Aggregated", 17, 6),
    }
    log = RequestLog(("sync", "async"), tmp_path / "r.jsonl", is_worker=True)
    log.observe("sync checkout", 1.54)
    log.in_flight["async"] = 2
    log.remote_in_flight["w"] = {"async": 3}
    registry = _registry(View(Stats(entries), Runner("running", 2)), log)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value(names.LOCUST_REQUESTS, lane="sync", kind="checkout") == 10
    assert value(names.LOCUST_FAILURES, lane="async", kind="checkout_retry") == 1
    assert value(names.LOCUST_ARRIVALS, lane="sync") == 10  # first attempts, not retries
    assert value(names.LOCUST_ARRIVALS, lane="async") == 3  # dropped arrivals too
    assert value(names.LOCUST_REQUESTS, lane="Aggregated", kind="") is None
    assert value(names.LOCUST_REQUEST_DURATION + "_bucket", lane="sync", kind="checkout", le="1.5") == 0
    assert value(names.LOCUST_REQUEST_DURATION + "_bucket", lane="sync", kind="checkout", le="1.85") == 1
    assert value(names.LOCUST_IN_FLIGHT, lane="async") == 5
    assert value(names.LOCUST_ARRIVAL_RATE_TARGET, lane="sync") == 7.0
    assert value(names.LOCUST_USERS) == 2


def test_no_target_rate_while_locust_is_not_running(tmp_path: Path) -> None:
    log = RequestLog(("sync", "async"), tmp_path / "r.jsonl", is_worker=True)
    registry = _registry(View(Stats({}), Runner("stopped", 0)), log)
    assert registry.get_sample_value(names.LOCUST_ARRIVAL_RATE_TARGET, {"lane": "sync"}) == 0.0
    assert _registry(View(Stats({}), None), log).get_sample_value(names.LOCUST_USERS) == 0


def test_one_arrivals_sample_per_lane_when_arrivals_were_dropped(tmp_path: Path) -> None:
    """First checkouts and dropped arrivals are two of Locust's entries but one lane's arrivals:
    one sample, their sum (Prometheus refuses two samples with the same labels)."""
    entries = {
        ("sync checkout", "POST"): Entry("sync checkout", 10, 2),
        ("sync arrival dropped", "POST"): Entry("sync arrival dropped", 3, 3),
    }
    log = RequestLog(("sync", "async"), tmp_path / "r.jsonl", is_worker=True)
    registry = _registry(View(Stats(entries), Runner("running", 1)), log)
    samples = [
        (sample.labels, sample.value)
        for family in registry.collect()
        if family.name + "_total" == names.LOCUST_ARRIVALS
        for sample in family.samples
        if sample.name == names.LOCUST_ARRIVALS
    ]
    assert samples == [({"lane": "sync"}, 13.0)]
    text = generate_latest(registry).decode()
    assert text.count(f'{names.LOCUST_ARRIVALS}{{lane="sync"}}') == 1
