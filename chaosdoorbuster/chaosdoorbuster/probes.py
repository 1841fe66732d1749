"""Chaos Toolkit probes: a lane's figures (from bounded real orders, or from the stack's
Prometheus), the stack's active faults, and a finished run's verdicts and figures.

Every probe returns plain JSON, so a steady-state hypothesis can hold a tolerance to any of
its fields: ``{"type": "range", "range": [0, 0.05], "target": "error_rate"}``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed, InvalidActivity

from chaosdoorbuster.arguments import (
    doorbuster_errors,
    duration_arg,
    lane_arg,
    positive_int_arg,
    state_dir,
)
from chaosdoorbuster.holder import OWNER
from chaosdoorbuster.stack import running_stack
from harness.analysis.estimates import percentile
from harness.faults.chaos import Chaos
from harness.faults.leases import fault_owners
from harness.metrics.panels import Query, panel
from harness.metrics.prometheus import PrometheusClient
from harness.records.run_dir import RunDir
from harness.records.summary import read_summary
from harness.records.verdicts import overall
from model.errors import ConfigError
from model.topology import Topology, is_loopback

__all__ = ["active_faults", "lane_figures", "probe_lane", "run_outcome", "run_verdicts"]

MOST_REQUESTS = 1000
MOST_RATE = 100.0
MOST_TIMEOUT_S = 60.0
MOST_WINDOW_S = 3600.0
ORDER_ITEM = {"sku": "tv-55", "qty": 1}


# -- bounded real orders ---------------------------------------------------------------------
def probe_lane(
    lane: str = "async",
    requests_count: int = 20,
    rate: float = 10.0,
    timeout: float | str = "5s",
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send ``requests_count`` real orders to the lane's order service on loopback, ``rate``
    a second, one at a time, each waited for at most ``timeout``; returns how they were
    answered: ``sent``, ``ok`` (2xx), ``error_rate`` (the rest, over sent), ``p50_s``,
    ``p99_s`` (latency of every answer, failures included), ``statuses``.

    The async lane's 202 says the order was taken (into its outbox), not that it was fulfilled."""
    lane = lane_arg(lane)
    count = positive_int_arg("requests_count", requests_count, most=MOST_REQUESTS)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= MOST_RATE:
        raise InvalidActivity(
            f"rate: expected requests a second, above 0 and at most {MOST_RATE:g}, got {rate!r}"
        )
    timeout_s = duration_arg("timeout", timeout, most_s=MOST_TIMEOUT_S)
    with doorbuster_errors("probe_lane"):
        topology = running_stack(state_dir(configuration))
    return send_orders(topology, lane, count=count, rate=float(rate), timeout_s=timeout_s)


def _order_url(topology: Topology, lane: str) -> str:
    if not topology.builtin:
        raise ActivityFailed(
            f"probe_lane sends the built-in checkout's orders; this stack runs system "
            f"{topology.settings.system.name if topology.settings.system else '?'}: use lane_figures"
        )
    endpoint = topology.order_service(lane)
    if not is_loopback(endpoint.host):  # load only ever goes to loopback
        raise ActivityFailed(f"probe_lane: the {lane} lane is at {endpoint.host}, not on loopback")
    return f"{endpoint.url}/orders"


def send_orders(
    topology: Topology, lane: str, *, count: int, rate: float, timeout_s: float, session: Any = None
) -> dict[str, Any]:
    """``count`` orders at ``rate`` a second, one at a time; the figures of their answers."""
    url = _order_url(topology, lane)
    http = session or requests.Session()
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    start = time.monotonic()
    try:
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            order = {"customer_id": f"chaostoolkit-{uuid.uuid4().hex[:8]}", "items": [ORDER_ITEM]}
            sent = time.monotonic()
            try:
                answer = http.post(url, json=order, timeout=timeout_s)
                statuses[str(answer.status_code)] += 1
            except requests.Timeout:
                statuses["timeout"] += 1
            except requests.RequestException:
                statuses["connection error"] += 1
            latencies.append(time.monotonic() - sent)
    finally:
        if session is None:
            http.close()
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))

    def seconds(q: float) -> float | None:
        value = percentile(latencies, q)
        return None if math.isnan(value) else round(value, 4)

    return {
        "lane": lane,
        "sent": count,
        "ok": ok,
        "error_rate": round(1 - ok / count, 4),
        "p50_s": seconds(0.5),
        "p99_s": seconds(0.99),
        "statuses": dict(statuses),
        "seconds": round(time.monotonic() - start, 3),
    }


# -- the lane's last seconds, from Prometheus -----------------------------------------------------
def _lane_value(
    client: PrometheusClient, query: Query, lane: str, window_s: float, over: str
) -> float | None:
    """The catalogue query's ``over`` (avg, max) over the last ``window_s`` seconds, for ``lane``."""
    found = client.query(f"{over}_over_time(({query.expr})[{int(window_s)}s:1s])")
    for series in found:
        if series.get("metric", {}).get("lane") == lane:
            value = float(series["value"][1])
            return None if math.isnan(value) else value
    return None


def lane_figures(
    lane: str = "async",
    window: float | str = "30s",
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The lane's figures over the last ``window`` from the stack's Prometheus, drawn from the
    panel catalogue's queries: ``throughput_rps`` (2xx answers a second, averaged),
    ``errors_per_s`` (5xx), ``error_rate`` (5xx over 2xx + 5xx), ``p50_s`` ... ``p99_s`` (the
    window's worst, None if no 2xx answer); ActivityFailed if the lane answered no order in the
    window.  Prometheus' recording rules lag the orders by a second or two: a probe right after
    load wants ``"pauses": {"before": 3}``."""
    lane = lane_arg(lane)
    window_s = duration_arg("window", window, most_s=MOST_WINDOW_S)
    if window_s < 2:
        raise InvalidActivity(f"window: Prometheus scrapes every second; give at least 2s, got {window!r}")
    with doorbuster_errors("lane_figures"):
        topology = running_stack(state_dir(configuration))
        client = PrometheusClient(topology.prometheus.url, timeout_s=10.0)
        throughput = _lane_value(client, panel("throughput").queries[0], lane, window_s, "avg")
        errors = _lane_value(client, panel("errors").queries[0], lane, window_s, "avg")
        figures: dict[str, Any] = {"lane": lane, "window_s": window_s}
        # The latency panel draws p50, p95 and p99, each legend naming its quantile.
        for query in panel("latency").queries:
            quantile = query.legend.rsplit(" ", 1)[-1]
            figures[f"{quantile}_s"] = _lane_value(client, query, lane, window_s, "max")
    if throughput is None and errors is None:
        # Not a figure of None that a tolerance would trip over: say why there is none.
        raise ActivityFailed(
            f"lane_figures: Prometheus has no answered orders on the {lane} lane in the last "
            f"{window_s:g}s; is load going (probe_lane, doorbuster run)? Rules lag a scrape or two."
        )
    answered = (throughput or 0.0) + (errors or 0.0)
    figures.update(
        throughput_rps=throughput,
        errors_per_s=errors,
        error_rate=round((errors or 0.0) / answered, 4) if answered else None,
    )
    return figures


# -- faults --------------------------------------------------------------------------------------
def active_faults(configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every fault in force on the stack and who applied it, as ``doorbuster toxic list --json``
    has them: ``count``, ``by_chaostoolkit``, ``foreign`` (applied outside doorbuster), ``faults``."""
    root = state_dir(configuration)
    with doorbuster_errors("active_faults"):
        topology = running_stack(root)
        owned = fault_owners(root, Chaos(topology).active())
    return {
        "count": len(owned),
        "by_chaostoolkit": sum(1 for o in owned if o.owner == OWNER),
        "foreign": sum(1 for o in owned if o.foreign),
        "faults": [{**o.as_json(), "applied_by": o.applied_by} for o in owned],
    }


# -- a finished run -----------------------------------------------------------------------------
def run_outcome(run_dir: str) -> str:
    """A run directory's outcome alone, ``pass``, ``fail`` or ``undetermined``: a steady-state
    probe's tolerance can be the literal ``"pass"`` (a range tolerance's ``target`` reads only
    a top-level key, and a JSON path one needs ``chaostoolkit-lib[jsonpath]``)."""
    outcome: str = run_verdicts(run_dir)["outcome"]
    return outcome


def run_verdicts(run_dir: str) -> dict[str, Any]:
    """A run directory's verdicts and each lane's figures (from its ``summary.json``):
    ``outcome`` (pass, fail or undetermined), ``verdicts`` (expectation, outcome, observed,
    reason), ``lanes`` (``p50_ms``, ``p95_ms``, ``p99_ms``, ``error_rate``, ``throughput_rps``,
    ``requests``)."""
    if not isinstance(run_dir, str) or not run_dir:
        raise InvalidActivity(f"run_dir: expected a run directory's path, got {run_dir!r}")
    path = RunDir(Path(run_dir).expanduser()).summary
    if not path.is_file():
        raise InvalidActivity(f"run_dir: {run_dir} has no {path.name}; is it a finished run?")
    try:
        summary = read_summary(path)
    except ConfigError as exc:  # names the file and what is wrong in it
        raise ActivityFailed(f"run_dir: {path} can not be read: {exc}") from None
    lanes = {
        lane: {
            "requests": entry.requests,
            "error_rate": entry.error_rate,
            "throughput_rps": entry.throughput_rps,
            "p50_ms": entry.latency_ms.p50,
            "p95_ms": entry.latency_ms.p95,
            "p99_ms": entry.latency_ms.p99,
        }
        for lane, entry in summary.lanes.items()
    }
    return {
        "outcome": overall(summary.verdicts),
        "verdicts": [
            {"expectation": v.expectation, "outcome": v.outcome, "observed": v.observed, "reason": v.reason}
            for v in summary.verdicts
        ],
        "lanes": lanes,
    }
