"""The counter sampler against real /metrics pages on loopback: parsing, restarts, silence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.metrics.counters import CounterSampler
from model.settings import PortSettings, StackSettings
from model.topology import Topology
from tests.unit.metrics_server import MetricsServer


def worker_page(started: float, attempts: float, redelivered: float) -> str:
    # The shape prometheus-client writes, histogram and _created lines included.
    return f"""# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds {started}
# HELP doorbuster_downstream_call_attempts_total Attempts to call a dependency, by outcome.
# TYPE doorbuster_downstream_call_attempts_total counter
doorbuster_downstream_call_attempts_total{{lane="async",dependency="email",outcome="ok"}} {attempts}
doorbuster_downstream_call_attempts_total{{lane="async",dependency="email",outcome="timeout"}} 1.0
downstream_call_attempts_created{{lane="async",dependency="email",outcome="ok"}} {started}
# HELP doorbuster_worker_messages_redelivered_total Messages the broker delivered again.
# TYPE doorbuster_worker_messages_redelivered_total counter
doorbuster_worker_messages_redelivered_total{{lane="async",dependency="email"}} {redelivered}
# HELP doorbuster_downstream_call_duration_seconds Call time.
# TYPE doorbuster_downstream_call_duration_seconds histogram
doorbuster_downstream_call_duration_seconds_bucket{{lane="async",dependency="email",le="+Inf"}} 99.0
doorbuster_downstream_call_duration_seconds_count{{lane="async",dependency="email"}} 99.0
"""


def order_page(started: float, posts: float) -> str:
    return f"""process_start_time_seconds {started}
doorbuster_order_requests_total{{lane="async",method="POST",code="202"}} {posts}
doorbuster_order_requests_total{{lane="async",method="GET",code="200"}} 500.0
doorbuster_downstream_call_attempts_total{{lane="async",dependency="payment",outcome="ok"}} {posts}
"""


@pytest.fixture
def pages() -> Iterator[dict[str, MetricsServer]]:
    names = [
        "order-sync",
        "order-async",
        "worker-inventory",
        "worker-warehouse",
        "worker-email",
        "worker-analytics",
    ]
    # Above the ephemeral range, which a stack's ports may not use; the first free one.
    served = {name: MetricsServer(ports=range(61000, 61500)) for name in names}
    try:
        yield served
    finally:
        for page in served.values():
            if page.thread.is_alive():
                page.stop()


def test_a_restart_is_counted_from_zero_and_a_process_gone_at_the_end_is_missing(
    pages: dict[str, MetricsServer],
) -> None:
    ports = PortSettings(base=24500, overrides={name: page.port for name, page in pages.items()})
    sampler = CounterSampler(Topology.from_settings(StackSettings(ports=ports)), timeout_s=1)
    sampler.read()  # the first reading sets ``since``; every process started before it
    started = sampler.since - 100
    for name in ("worker-inventory", "worker-warehouse"):
        pages[name].text = worker_page(started, 0, 0)
    pages["order-sync"].text = "process_start_time_seconds 1.0\n"
    pages["order-async"].text = order_page(started, 10)
    pages["worker-email"].text = worker_page(started, 40, 0)
    pages["worker-analytics"].text = worker_page(started, 30, 0)
    sampler.readings.clear()
    sampler.read()
    pages["order-async"].text = order_page(started, 20)
    pages["worker-email"].text = worker_page(started, 45, 0)
    # analytics restarts and climbs past its old count; email stops answering.
    pages["worker-analytics"].text = worker_page(sampler.since + 1, 35, 2)
    sampler.read()
    pages["worker-email"].stop()
    sampler.read()

    figures = sampler.counters()
    # POSTs only (GETs left out); payment 10, email 5 while it answered, analytics counted
    # from 0 after its restart: 35 ok and 1 timeout (every outcome counts)
    assert figures.attempts["async"] == (10 + 5 + 36, 10)
    assert figures.broker["redelivered"] == 2
    assert figures.restarted == ["worker-analytics"]
    assert figures.incomplete["retry_amplification.async"] == ["worker-email"]
    assert figures.incomplete["broker.redelivered"] == ["worker-email"]
    assert "retry_amplification.sync" not in figures.incomplete


def sync_page(started: float, ok: float, timeouts: float, refused: float) -> str:
    return f"""process_start_time_seconds {started}
doorbuster_downstream_call_attempts_total{{lane="sync",dependency="email",outcome="ok"}} {ok}
doorbuster_downstream_call_attempts_total{{lane="sync",dependency="email",outcome="timeout"}} {timeouts}
doorbuster_downstream_call_attempts_total{{lane="sync",dependency="email",outcome="circuit_open"}} {refused}
doorbuster_downstream_call_attempts_total{{lane="sync",dependency="payment",outcome="ok"}} {ok}
"""


def test_the_attempt_timeline_counts_what_went_out_per_dependency_through_a_restart(
    pages: dict[str, MetricsServer],
) -> None:
    ports = PortSettings(base=24500, overrides={name: page.port for name, page in pages.items()})
    sampler = CounterSampler(Topology.from_settings(StackSettings(ports=ports)), timeout_s=1)
    started = 1000.0
    for name in ("order-async", "worker-inventory", "worker-warehouse", "worker-email", "worker-analytics"):
        pages[name].text = worker_page(started, 0, 0)
    pages["order-sync"].text = sync_page(started, 10, 0, 0)
    sampler.read()
    pages["order-sync"].text = sync_page(started, 14, 6, 50)  # refused by the breaker: never sent
    sampler.read()
    pages["order-sync"].text = sync_page(sampler.since + 1, 3, 1, 0)  # restarted: counts from 0
    sampler.read()
    pages["worker-email"].stop()  # the async lane's email count is unknown from here
    sampler.read()

    timeline = sampler.counters().attempt_timeline
    assert timeline is not None and len(timeline.times) == 4
    assert timeline.times == sorted(timeline.times) and timeline.times[0] >= sampler.since
    assert timeline.attempts["sync"]["email"] == [0.0, 10.0, 14.0, 14.0]
    assert timeline.attempts["sync"]["payment"] == [0.0, 4.0, 7.0, 7.0]
    # every async process answered the first three readings; worker-email not the last
    assert timeline.attempts["async"]["email"] == [0.0, 0.0, 0.0, None]
