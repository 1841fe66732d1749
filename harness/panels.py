"""Every panel, defined once: title, PromQL, unit, thresholds.

The Grafana dashboards and the run report's plots are both drawn from these definitions, and
Prometheus' recording rules are generated from :data:`RECORDING_RULES`, so a panel, a plot
and a rule can not disagree about what a number means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DASHBOARDS", "PANELS", "Panel", "Query", "panel", "panels_for", "recording_rules"]

_W = "10s"  # rate window: ten 1 s scrapes


@dataclass(frozen=True, kw_only=True)
class Query:
    expr: str
    legend: str  # Grafana legend format, e.g. "{{lane}} p95"


@dataclass(frozen=True, kw_only=True)
class Panel:
    key: str
    title: str
    queries: tuple[Query, ...]
    unit: str  # Grafana unit id: s, reqps, short, percentunit
    dashboard: str
    description: str = ""
    thresholds: tuple[tuple[float, str], ...] = ()  # (value, colour), ascending
    in_report: bool = True
    labels: tuple[str, ...] = field(default=("lane",))
    # Drawn from what every stack has (the load generator, the faults), not the checkout's own
    # services: a system of the user's gets these panels and no others.
    any_system: bool = False


def _q(expr: str, legend: str) -> Query:
    return Query(expr=expr, legend=legend)


# name -> expression; Prometheus evaluates these every second (rules.yml).
RECORDING_RULES: dict[str, str] = {
    **{
        f"lane:order_request_duration_seconds:p{q}": (
            f"histogram_quantile(0.{q}, sum by (lane, le) "
            f'(rate(order_request_duration_seconds_bucket{{code=~"2.."}}[{_W}])))'
        )
        for q in ("50", "95", "99")
    },
    "lane:order_requests:rate": (f'sum by (lane) (rate(order_requests_total{{method="POST"}}[{_W}]))'),
    "lane:order_successes:rate": (
        f'sum by (lane) (rate(order_requests_total{{method="POST", code=~"2.."}}[{_W}]))'
    ),
    # "or ... * 0": a lane that answered no 5xx shows 0, not a gap that looks like missing data.
    "lane:order_errors:rate": (
        f'sum by (lane) (rate(order_requests_total{{method="POST", code=~"5.."}}[{_W}]))'
        f' or sum by (lane) (rate(order_requests_total{{method="POST"}}[{_W}])) * 0'
    ),
    "lane:downstream_call_attempts:rate": (f"sum by (lane) (rate(downstream_call_attempts_total[{_W}]))"),
    "lane:downstream_call_retries:rate": (f"sum by (lane) (rate(downstream_call_retries_total[{_W}]))"),
    **{
        f"lane:locust_request_duration_seconds:p{q}": (
            f"histogram_quantile(0.{q}, sum by (lane, le) "
            f'(rate(locust_request_duration_seconds_bucket{{kind="checkout"}}[{_W}])))'
        )
        for q in ("50", "95", "99")
    },
}


PANELS: tuple[Panel, ...] = (
    # -- overview: both lanes side by side ------------------------------------------------
    Panel(
        key="latency",
        title="Checkout latency p50 / p95 / p99 (server)",
        unit="s",
        dashboard="overview",
        queries=tuple(
            _q(f"lane:order_request_duration_seconds:p{q}", f"{{{{lane}}}} p{q}") for q in ("50", "95", "99")
        ),
        thresholds=((1.0, "yellow"), (5.0, "red")),
    ),
    Panel(
        key="throughput",
        title="Orders answered 2xx per second",
        unit="reqps",
        dashboard="overview",
        queries=(_q("lane:order_successes:rate", "{{lane}}"),),
    ),
    Panel(
        key="errors",
        title="Orders answered 5xx per second",
        unit="reqps",
        dashboard="overview",
        queries=(_q("lane:order_errors:rate", "{{lane}}"),),
        thresholds=((0.1, "red"),),
    ),
    Panel(
        key="faults",
        title="Active faults",
        unit="short",
        dashboard="overview",
        queries=(_q("sum by (lane, dependency, type) (toxic_active)", "{{lane}} {{dependency}} {{type}}"),),
        labels=("lane", "dependency", "type"),
        any_system=True,
    ),
    # -- the sync lane ----------------------------------------------------------------------
    Panel(
        key="pool",
        title="Sync thread pool: busy, queued, size",
        unit="short",
        dashboard="sync",
        queries=(
            _q('thread_pool_busy{lane="sync"}', "busy"),
            _q('thread_pool_queued{lane="sync"}', "queued"),
            _q('thread_pool_size{lane="sync"}', "threads"),
        ),
    ),
    Panel(
        key="rejected",
        title="Sync pool rejections (503) per second",
        unit="reqps",
        dashboard="sync",
        queries=(_q(f'sum(rate(thread_pool_rejected_total{{lane="sync"}}[{_W}]))', "rejected"),),
    ),
    Panel(
        key="timeouts",
        title="Downstream call timeouts per second",
        unit="reqps",
        dashboard="sync",
        queries=(
            _q(
                "sum by (lane, dependency) "
                f'(rate(downstream_call_attempts_total{{outcome="timeout"}}[{_W}]))',
                "{{lane}} {{dependency}}",
            ),
        ),
        labels=("lane", "dependency"),
    ),
    Panel(
        key="retries_per_order",
        title="Retries per order",
        unit="short",
        dashboard="sync",
        queries=(_q("lane:downstream_call_retries:rate / lane:order_requests:rate", "{{lane}}"),),
    ),
    Panel(
        key="amplification",
        title="Retry amplification (downstream attempts per order)",
        unit="short",
        dashboard="sync",
        queries=(_q("lane:downstream_call_attempts:rate / lane:order_requests:rate", "{{lane}}"),),
        thresholds=((6.0, "yellow"), (10.0, "red")),
    ),
    Panel(
        key="breaker",
        title="Circuit breaker (0 closed, 1 half-open, 2 open)",
        unit="short",
        dashboard="sync",
        queries=(_q('circuit_breaker_state{lane="sync"}', "{{dependency}}"),),
        labels=("dependency",),
    ),
    Panel(
        key="duplicates",
        title="Duplicate charges",
        unit="short",
        dashboard="sync",
        queries=(_q("sum by (lane) (payment_duplicate_charges_total)", "{{lane}}"),),
    ),
    # -- the async lane ---------------------------------------------------------------------
    Panel(
        key="ack",
        title="Async 202 latency p50 / p99",
        unit="s",
        dashboard="async",
        queries=(
            _q('lane:order_request_duration_seconds:p50{lane="async"}', "p50"),
            _q('lane:order_request_duration_seconds:p99{lane="async"}', "p99"),
        ),
        thresholds=((1.0, "red"),),
    ),
    Panel(
        key="backlog",
        title="Backlog: outbox and queue depth",
        unit="short",
        dashboard="async",
        queries=(
            _q('sum(outbox_backlog{lane="async"})', "outbox"),
            _q('sum by (queue) (broker_queue_depth{lane="async"})', "{{queue}}"),
            _q(
                'sum by (dependency) (worker_messages_in_progress{lane="async"})',
                "{{dependency}} in progress",
            ),
        ),
        labels=("queue",),
    ),
    Panel(
        key="consumers",
        title="Messages processed per second",
        unit="reqps",
        dashboard="async",
        queries=(
            _q(
                f'sum by (dependency) (rate(worker_messages_processed_total{{lane="async"}}[{_W}]))',
                "{{dependency}}",
            ),
        ),
        labels=("dependency",),
    ),
    Panel(
        key="redeliveries",
        title="Redeliveries and dead letters (total)",
        unit="short",
        dashboard="async",
        queries=(
            _q('sum(worker_messages_redelivered_total{lane="async"})', "redelivered"),
            _q('sum(worker_messages_dead_lettered_total{lane="async"})', "dead-lettered"),
        ),
    ),
    Panel(
        key="fulfillment",
        title="Time from 202 to fulfilment p50 / p95",
        unit="s",
        dashboard="async",
        queries=tuple(
            _q(
                f"histogram_quantile(0.{q}, sum by (le) "
                f'(rate(order_fulfillment_seconds_bucket{{lane="async"}}[30s])))',
                f"p{q}",
            )
            for q in ("50", "95")
        ),
    ),
    # -- load: Locust's view ------------------------------------------------------------------
    Panel(
        key="client_latency",
        title="Client latency p50 / p95 (from intended start)",
        unit="s",
        dashboard="load",
        queries=tuple(
            _q(f"lane:locust_request_duration_seconds:p{q}", f"{{{{lane}}}} p{q}") for q in ("50", "95")
        ),
        any_system=True,
    ),
    Panel(
        key="arrivals",
        title="Arrival rate: set and achieved",
        unit="reqps",
        dashboard="load",
        queries=(
            _q("sum by (lane) (locust_arrival_rate_target)", "{{lane}} set"),
            _q(f"sum by (lane) (rate(locust_arrivals_total[{_W}]))", "{{lane}} achieved"),
        ),
        any_system=True,
    ),
    Panel(
        key="users",
        title="Locust users and requests in flight",
        unit="short",
        dashboard="load",
        queries=(
            _q("sum(locust_users)", "users"),
            _q("sum by (lane) (locust_in_flight)", "{{lane}} in flight"),
        ),
        any_system=True,
    ),
)

DASHBOARDS: dict[str, str] = {
    "overview": "doorbuster: sync vs async",
    "sync": "doorbuster: sync lane",
    "async": "doorbuster: async lane",
    "load": "doorbuster: load (Locust)",
}


def panels_for(builtin: bool) -> tuple[Panel, ...]:
    """The panels a stack has data for: all of them for the checkout, else the universal ones."""
    return PANELS if builtin else tuple(p for p in PANELS if p.any_system)


def panel(key: str) -> Panel:
    for p in PANELS:
        if p.key == key:
            return p
    raise KeyError(key)


def recording_rules() -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "doorbuster",
                "interval": "1s",
                "rules": [{"record": name, "expr": expr} for name, expr in RECORDING_RULES.items()],
            }
        ]
    }
