"""The one metrics reader against a real page on loopback: the topology's metrics path, typed
samples, the rule for a missing metric, and a page that does not come in time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from harness.metrics.scrape import MetricMissing, parse_page, read_page, scrape
from model.errors import MetricsUnreadable
from model.system import ServiceSpec
from model.topology import Endpoint, ProcessSpec
from tests.unit.metrics_server import MetricsServer

PATH = "/v1/__metrics__"  # a system's service serving its metrics elsewhere than /metrics


def _page() -> str:
    """A page in the shape prometheus-client writes: a labelled counter used for one lane only,
    a labelled gauge never used, a histogram."""
    registry = CollectorRegistry()
    hits = Counter("doorbuster_hits", "Hits.", ["lane"], registry=registry)
    Gauge("doorbuster_idle", "Never set.", ["lane"], registry=registry)
    Histogram("doorbuster_wait_seconds", "Waits.", registry=registry).observe(0.3)
    hits.labels("sync").inc(3)
    return generate_latest(registry).decode()


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    served = MetricsServer(_page(), path=PATH)
    try:
        yield served
    finally:
        served.stop()


def _api(port: int, metrics: str | None = PATH) -> ProcessSpec:
    return ProcessSpec(
        name="api", kind="external", lane="sync", dependency=None,
        endpoint=Endpoint(host="127.0.0.1", port=port), http_health=True,
        service=ServiceSpec(name="api", url=f"http://127.0.0.1:{port}", metrics=metrics),
    )  # fmt: skip


def test_the_page_is_read_at_the_topologys_metrics_path_as_typed_samples(server: MetricsServer) -> None:
    page = scrape(_api(server.port))
    assert page.process == "api" and page.read_at is not None
    assert [(s.name, dict(s.labels), s.value) for s in page.select("doorbuster_hits_total")] == [
        ("doorbuster_hits_total", {"lane": "sync"}, 3.0)
    ]
    assert page.value("doorbuster_wait_seconds_count") == 1.0
    assert page.value("doorbuster_wait_seconds_bucket", le="0.5") == 1.0
    # The default path is not where this service serves them: a reader that ignored
    # metrics_path would get a 404 here.
    with pytest.raises(MetricsUnreadable, match="404"):
        read_page(f"http://127.0.0.1:{server.port}/metrics", process="api")


def test_a_declared_metric_without_the_sample_reads_0_and_an_undeclared_one_is_missing(
    server: MetricsServer,
) -> None:
    page = scrape(_api(server.port))
    assert page.value("doorbuster_hits_total", lane="async") == 0.0  # declared, not used for async
    assert page.value("doorbuster_idle") == 0.0  # declared, never set: no sample at all
    assert page.select("doorbuster_idle", lane="sync") == ()
    with pytest.raises(MetricMissing, match="api does not export doorbuster_misses_total"):
        page.value("doorbuster_misses_total")
    with pytest.raises(MetricMissing):
        page.value("doorbuster_hits")  # the counter's family name is not a sample's


def test_reading_only_some_metrics_keeps_the_rule_and_refuses_the_others(server: MetricsServer) -> None:
    page = scrape(_api(server.port), only=("doorbuster_hits_total", "doorbuster_idle", "doorbuster_gone"))
    assert page.value("doorbuster_hits_total", lane="sync") == 3.0
    assert page.value("doorbuster_idle", lane="sync") == 0.0
    with pytest.raises(MetricMissing):
        page.value("doorbuster_gone")
    with pytest.raises(ValueError, match="doorbuster_wait_seconds_count was not read from api"):
        page.value("doorbuster_wait_seconds_count")


def test_a_page_that_trickles_in_is_cut_off_in_time(server: MetricsServer) -> None:
    server.trickle = True
    started = time.monotonic()
    with pytest.raises(MetricsUnreadable, match=r"not read within 0\.5 s"):
        scrape(_api(server.port), timeout_s=0.5)
    assert time.monotonic() - started < 2.0


def test_a_process_gone_or_without_metrics_is_refused(server: MetricsServer) -> None:
    port = server.port
    server.stop()
    with pytest.raises(MetricsUnreadable, match=f"127.0.0.1:{port}{PATH}"):
        scrape(_api(port), timeout_s=1)
    with pytest.raises(ValueError, match="process api has no metrics page"):
        scrape(_api(port, metrics=None))


def test_text_that_is_not_a_page_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_page("this is not { a page\n", process="api")
