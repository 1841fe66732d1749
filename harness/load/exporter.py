"""The load generator's figures for Prometheus, per lane: Locust's counts from its merged
stats (so workers count too), and the latency histogram counted from the request records;
and the generators' own health, per worker, from their latest samples.

What it reads of Locust is typed by small protocols (Locust's ``Environment`` is a
:class:`LocustView`), so this module imports no Locust; a test passes a fake.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from harness.load.generator_log import GeneratorLog
from harness.load.request_log import RequestLog, lane_and_kind
from model import metric_names as names
from model.scenario import LoadSpec

__all__ = ["LoadCollector", "LocustView"]


class StatsEntry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def num_requests(self) -> int: ...

    @property
    def num_failures(self) -> int: ...


class Stats(Protocol):
    @property
    def entries(self) -> Mapping[tuple[str, str], StatsEntry]: ...


class RunnerView(Protocol):
    @property
    def state(self) -> str: ...

    @property
    def user_count(self) -> int: ...


class LocustView(Protocol):
    """What the exporter reads of Locust's environment."""

    @property
    def stats(self) -> Stats: ...

    @property
    def runner(self) -> RunnerView | None: ...


class LoadCollector:
    """Locust's client-side figures, per lane, from its merged stats (so workers count too)."""

    def __init__(
        self, environment: LocustView, load: LoadSpec, log: RequestLog, generators: GeneratorLog | None = None
    ) -> None:
        self.environment = environment
        self.load = load
        self.log = log
        self.generators = generators
        self.started = time.time()  # the schedule's start, once known: the target rate's clock

    def collect(self) -> Iterator[Metric]:
        stats = self.environment.stats
        requests = CounterMetricFamily(
            names.LOCUST_REQUESTS, "Requests by lane and kind.", labels=["lane", "kind"]
        )
        failures = CounterMetricFamily(names.LOCUST_FAILURES, "Failed requests.", labels=["lane", "kind"])
        arrivals = CounterMetricFamily(
            names.LOCUST_ARRIVALS, "Shopper arrivals (first attempts).", labels=["lane"]
        )
        # An arrival is a first checkout or a dropped arrival: two of Locust's entries, one
        # sample per lane (Prometheus refuses a family with two samples of the same labels).
        arrived: dict[str, int] = {}
        for entry in stats.entries.values():
            lane, kind = lane_and_kind(entry.name)
            if lane not in ("sync", "async"):
                continue
            requests.add_metric([lane, kind], entry.num_requests)
            failures.add_metric([lane, kind], entry.num_failures)
            if kind in ("checkout", "arrival_dropped"):
                arrived[lane] = arrived.get(lane, 0) + entry.num_requests
        for lane, count in sorted(arrived.items()):
            arrivals.add_metric([lane], count)
        # From the recorded times, not Locust's response times (rounded to 2 significant digits).
        latency = self.log.latency_histogram().metric_family(
            names.LOCUST_REQUEST_DURATION, "Latency from intended start, as the shopper saw it."
        )
        yield from (requests, failures, arrivals, latency)
        target = GaugeMetricFamily(names.LOCUST_ARRIVAL_RATE_TARGET, "Set arrival rate.", labels=["lane"])
        in_flight = GaugeMetricFamily(names.LOCUST_IN_FLIGHT, "Shopper journeys in flight.", labels=["lane"])
        runner = self.environment.runner
        running = runner is not None and runner.state in ("spawning", "running")
        stage = self.load.stage_at(time.time() - self.started) if running else None
        for lane in self.load.lanes:
            target.add_metric([lane], stage.rate if stage and self.load.model == "open" else 0.0)
            in_flight.add_metric([lane], self.log.lane_in_flight(lane))
        yield target
        yield in_flight
        users = GaugeMetricFamily(names.LOCUST_USERS, "Locust users running.")
        users.add_metric([], runner.user_count if runner is not None else 0)
        yield users
        if self.generators is not None:
            yield from _generator_families(self.generators)


def _generator_families(generators: GeneratorLog) -> Iterator[Metric]:
    """Each generator's health, labelled by ``worker`` (its segment: bounded by --workers)."""
    yield generators.send_lag_histogram().metric_family(
        names.GENERATOR_SEND_LAG, "Arrivals' send lag: start - intended start.", labels=("worker", "lane")
    )
    loop = GaugeMetricFamily(
        names.GENERATOR_EVENT_LOOP_LAG, "Most a 100 ms timer fired late, last window.", labels=["worker"]
    )
    cpu = GaugeMetricFamily(
        names.GENERATOR_CPU_SHARE, "CPU time over wall time, last window.", labels=["worker"]
    )
    counts = {
        "due": CounterMetricFamily(names.GENERATOR_ARRIVALS_DUE, "Arrivals due.", labels=["worker"]),
        "sent": CounterMetricFamily(names.GENERATOR_ARRIVALS_SENT, "Arrivals sent.", labels=["worker"]),
        "dropped": CounterMetricFamily(
            names.GENERATOR_ARRIVALS_DROPPED, "Arrivals dropped at max_in_flight.", labels=["worker"]
        ),
        "never_sent": CounterMetricFamily(
            names.GENERATOR_ARRIVALS_NEVER_SENT, "Arrivals due, never sent.", labels=["worker"]
        ),
    }
    for worker, sample in sorted(generators.latest.items()):
        loop.add_metric([worker], sample.loop_lag_max_s)
        cpu.add_metric([worker], sample.cpu_share)
        for field, family in counts.items():
            family.add_metric([worker], getattr(sample, field))
    yield from (loop, cpu, *counts.values())
