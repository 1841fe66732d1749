"""Every panel, defined once: title, PromQL, unit, thresholds.

The Grafana dashboards and the run report's plots are both drawn from these definitions, and
Prometheus' recording rules are generated from :data:`RECORDING_RULES`, so a panel, a plot
and a rule can not disagree about what a number means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model import metric_names as names
from model.generator_limits import CPU_SHARE_LIMIT, LOOP_LAG_LIMIT_S, SEND_LAG_FLOOR_S, SEND_LAG_LIMIT_S

__all__ = ["DASHBOARDS", "PANELS", "Panel", "Query", "panel", "panels_for", "recording_rules"]

_W = "10s"  # rate window: ten 1 s scrapes
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True, kw_only=True)
class Query:
    expr: str
    legend: str  # Grafana legend format, e.g. "{{lane}} p95"

    @property
    def legend_labels(self) -> frozenset[str]:
        """The labels the legend names."""
        return frozenset(_LEGEND_LABEL.findall(self.legend))

    def legend_for(self, labels: Mapping[str, str]) -> str:
        """One series' legend as Grafana renders it: each ``{{label}}`` replaced by the series'
        value of it, and by nothing when the series has no such label.

        >>> Query(expr="x", legend="{{queue}} {{ lane }}").legend_for({"lane": "async"})
        ' async'
        """
        return _LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), self.legend)


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


def _generator_panel(
    *, key: str, title: str, unit: str, description: str, queries: tuple[Query, ...],
    thresholds: tuple[tuple[float, str], ...] = (),
) -> Panel:  # fmt: skip
    """A panel of the load generator's own health: a line per generator process, on every
    stack.  Not among the report's panels: the report draws these from generator.jsonl, every
    sample exact, on one figure (harness.report.generator_chart).  The thresholds are the
    limits the verdicts' gate judges by (harness.analysis.generator)."""
    return Panel(key=key, title=title, unit=unit, dashboard="load", description=description, queries=queries,
                 thresholds=thresholds, in_report=False, labels=("worker",), any_system=True)  # fmt: skip


def _generator_gauge(key: str, title: str, unit: str, metric: str, limit: float, description: str) -> Panel:
    """A generator panel of a gauge per process, the gate's limit for it the red line."""
    return _generator_panel(
        key=key,
        title=title,
        unit=unit,
        description=description,
        queries=(_q(f"max by (worker) ({metric})", "generator {{worker}}"),),
        thresholds=((limit, "red"),),
    )


def rule_name(level: str, metric: str, operations: str) -> str:
    """A recording rule's name in the guide's form ``level:metric:operations``
    (https://prometheus.io/docs/practices/rules/): the metric unchanged but for a counter's
    ``_total``, the operations newest first, each window in the operation that took it.

    >>> rule_name("lane", names.ORDER_REQUESTS, f"rate{_W}")
    'lane:doorbuster_order_requests:rate10s'
    """
    return f"{level}:{metric.removesuffix('_total')}:{operations}"


def _ratio(numerator: str, denominator: str) -> str:
    """The guide's ratio rule: the two metrics joined by ``_per_``, the operation ``ratio``."""
    num, den = (name.split(":") for name in (numerator, denominator))
    if num[0] != den[0] or num[2] != den[2]:
        raise ValueError(f"a ratio of {numerator} and {denominator}: level and operations differ")
    return f"{num[0]}:{num[1]}_per_{den[1]}:ratio_{num[2]}"


_QUANTILES = ("50", "95", "99")


def _quantile_rule(metric: str, q: str) -> str:
    return rule_name("lane", metric, f"p{q}_rate{_W}")


ORDER_LATENCY_P = {q: _quantile_rule(names.ORDER_REQUEST_DURATION, q) for q in _QUANTILES}
LOCUST_LATENCY_P = {q: _quantile_rule(names.LOCUST_REQUEST_DURATION, q) for q in _QUANTILES}
ORDER_REQUESTS_BY_CODE = rule_name("lane_code", names.ORDER_REQUESTS, f"rate{_W}")
ORDER_REQUESTS_RATE = rule_name("lane", names.ORDER_REQUESTS, f"rate{_W}")
CALL_ATTEMPTS_RATE = rule_name("lane", names.DOWNSTREAM_CALL_ATTEMPTS, f"rate{_W}")
CALL_RETRIES_RATE = rule_name("lane", names.DOWNSTREAM_CALL_RETRIES, f"rate{_W}")
RETRIES_PER_ORDER = _ratio(CALL_RETRIES_RATE, ORDER_REQUESTS_RATE)
ATTEMPTS_PER_ORDER = _ratio(CALL_ATTEMPTS_RATE, ORDER_REQUESTS_RATE)

# name -> expression; Prometheus evaluates these every second (rules.yml), in this order.
RECORDING_RULES: dict[str, str] = {
    **{
        name: (
            f"histogram_quantile(0.{q}, sum by (lane, le) "
            f'(rate({names.ORDER_REQUEST_DURATION}_bucket{{code=~"2.."}}[{_W}])))'
        )
        for q, name in ORDER_LATENCY_P.items()
    },
    # Orders only (POST), not the async lane's status polls.
    ORDER_REQUESTS_BY_CODE: f'sum by (lane, code) (rate({names.ORDER_REQUESTS}{{method="POST"}}[{_W}]))',
    ORDER_REQUESTS_RATE: f"sum by (lane) ({ORDER_REQUESTS_BY_CODE})",
    CALL_ATTEMPTS_RATE: f"sum by (lane) (rate({names.DOWNSTREAM_CALL_ATTEMPTS}[{_W}]))",
    CALL_RETRIES_RATE: f"sum by (lane) (rate({names.DOWNSTREAM_CALL_RETRIES}[{_W}]))",
    # "> 0": a window with no orders has no ratio, not +Inf (workers still draining the backlog).
    RETRIES_PER_ORDER: f"{CALL_RETRIES_RATE} / ({ORDER_REQUESTS_RATE} > 0)",
    ATTEMPTS_PER_ORDER: f"{CALL_ATTEMPTS_RATE} / ({ORDER_REQUESTS_RATE} > 0)",
    **{
        name: (
            f"histogram_quantile(0.{q}, sum by (lane, le) "
            f'(rate({names.LOCUST_REQUEST_DURATION}_bucket{{kind="checkout"}}[{_W}])))'
        )
        for q, name in LOCUST_LATENCY_P.items()
    },
}


PANELS: tuple[Panel, ...] = (
    # -- overview: both lanes side by side ------------------------------------------------
    Panel(
        key="latency",
        title="Checkout latency p50 / p95 / p99 (server)",
        unit="s",
        dashboard="overview",
        queries=tuple(_q(ORDER_LATENCY_P[q], f"{{{{lane}}}} p{q}") for q in ("50", "95", "99")),
        thresholds=((1.0, "yellow"), (5.0, "red")),
    ),
    Panel(
        key="throughput",
        title="Orders answered 2xx per second",
        unit="reqps",
        dashboard="overview",
        queries=(_q(f'sum by (lane) ({ORDER_REQUESTS_BY_CODE}{{code=~"2.."}})', "{{lane}}"),),
    ),
    Panel(
        key="errors",
        title="Orders answered 5xx per second",
        unit="reqps",
        dashboard="overview",
        # "or ... * 0": a lane that answered no 5xx shows 0, not a gap that looks like missing data.
        queries=(
            _q(
                f'sum by (lane) ({ORDER_REQUESTS_BY_CODE}{{code=~"5.."}}) or {ORDER_REQUESTS_RATE} * 0',
                "{{lane}}",
            ),
        ),
        thresholds=((0.1, "red"),),
    ),
    Panel(
        key="faults",
        title="Active faults",
        unit="short",
        dashboard="overview",
        queries=(
            _q(f"sum by (lane, dependency, type) ({names.TOXIC_ACTIVE})", "{{lane}} {{dependency}} {{type}}"),
        ),
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
            _q(f'{names.THREAD_POOL_BUSY}{{lane="sync"}}', "busy"),
            _q(f'{names.THREAD_POOL_QUEUED}{{lane="sync"}}', "queued"),
            _q(f'{names.THREAD_POOL_SIZE}{{lane="sync"}}', "threads"),
        ),
    ),
    Panel(
        key="rejected",
        title="Sync pool rejections (503) per second",
        unit="reqps",
        dashboard="sync",
        queries=(_q(f'sum(rate({names.THREAD_POOL_REJECTED}{{lane="sync"}}[{_W}]))', "rejected"),),
    ),
    Panel(
        key="timeouts",
        title="Downstream call timeouts per second",
        unit="reqps",
        dashboard="sync",
        queries=(
            _q(
                "sum by (lane, dependency) "
                f'(rate({names.DOWNSTREAM_CALL_ATTEMPTS}{{outcome="timeout"}}[{_W}]))',
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
        queries=(_q(RETRIES_PER_ORDER, "{{lane}}"),),
    ),
    Panel(
        key="amplification",
        title="Retry amplification (downstream attempts per order)",
        unit="short",
        dashboard="sync",
        queries=(_q(ATTEMPTS_PER_ORDER, "{{lane}}"),),
        thresholds=((6.0, "yellow"), (10.0, "red")),
    ),
    Panel(
        key="breaker",
        title="Circuit breaker (0 closed, 1 half-open, 2 open)",
        unit="short",
        dashboard="sync",
        queries=(_q(f'{names.CIRCUIT_BREAKER_STATE}{{lane="sync"}}', "{{dependency}}"),),
        labels=("dependency",),
    ),
    Panel(
        key="duplicates",
        title="Duplicate charges",
        unit="short",
        dashboard="sync",
        queries=(_q(f"sum by (lane) ({names.PAYMENT_DUPLICATE_CHARGES})", "{{lane}}"),),
    ),
    # -- the async lane ---------------------------------------------------------------------
    Panel(
        key="ack",
        title="Async 202 latency p50 / p99",
        unit="s",
        dashboard="async",
        queries=(
            _q(f'{ORDER_LATENCY_P["50"]}{{lane="async"}}', "p50"),
            _q(f'{ORDER_LATENCY_P["99"]}{{lane="async"}}', "p99"),
        ),
        thresholds=((1.0, "red"),),
    ),
    Panel(
        key="backlog",
        title="Backlog: outbox and queue depth",
        unit="short",
        dashboard="async",
        queries=(
            _q(f'sum({names.OUTBOX_BACKLOG}{{lane="async"}})', "outbox"),
            _q(f'sum by (queue) ({names.BROKER_QUEUE_DEPTH}{{lane="async"}})', "{{queue}}"),
            _q(
                f'sum by (dependency) ({names.WORKER_MESSAGES_IN_PROGRESS}{{lane="async"}})',
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
                f'sum by (dependency) (rate({names.WORKER_MESSAGES_PROCESSED}{{lane="async"}}[{_W}]))',
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
            _q(f'sum({names.WORKER_MESSAGES_REDELIVERED}{{lane="async"}})', "redelivered"),
            _q(f'sum({names.WORKER_MESSAGES_DEAD_LETTERED}{{lane="async"}})', "dead-lettered"),
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
                f'(rate({names.ORDER_FULFILLMENT}_bucket{{lane="async"}}[30s])))',
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
        queries=tuple(_q(LOCUST_LATENCY_P[q], f"{{{{lane}}}} p{q}") for q in ("50", "95")),
        any_system=True,
    ),
    Panel(
        key="arrivals",
        title="Arrival rate: set and achieved",
        unit="reqps",
        dashboard="load",
        queries=(
            _q(f"sum by (lane) ({names.LOCUST_ARRIVAL_RATE_TARGET})", "{{lane}} set"),
            _q(f"sum by (lane) (rate({names.LOCUST_ARRIVALS}[{_W}]))", "{{lane}} achieved"),
        ),
        any_system=True,
    ),
    Panel(
        key="users",
        title="Locust users and requests in flight",
        unit="short",
        dashboard="load",
        queries=(
            _q(f"sum({names.LOCUST_USERS})", "users"),
            _q(f"sum by (lane) ({names.LOCUST_IN_FLIGHT})", "{{lane}} in flight"),
        ),
        any_system=True,
    ),
    # -- load: the generator's own health, per generator process (worker) --------------------
    _generator_panel(
        key="generator_send_lag",
        title="Load generator: send lag p99 (start - intended start)",
        unit="s",
        description="How late each generator process sent its arrivals. Lines: the floor of a "
        "latency verdict's limit (yellow) and the limit of any other verdict (red).",
        queries=(
            _q(
                "histogram_quantile(0.99, sum by (worker, le) "
                f"(rate({names.GENERATOR_SEND_LAG}_bucket[{_W}])))",
                "generator {{worker}} p99",
            ),
        ),
        thresholds=((SEND_LAG_FLOOR_S, "yellow"), (SEND_LAG_LIMIT_S, "red")),
    ),
    _generator_gauge(
        "generator_loop_lag",
        "Load generator: event loop lag (most a 100 ms timer fired late)",
        "s",
        names.GENERATOR_EVENT_LOOP_LAG,
        LOOP_LAG_LIMIT_S,
        "Past the line the process's event loop was blocked: it read answers late too.",
    ),
    _generator_gauge(
        "generator_cpu",
        "Load generator: CPU share of one core",
        "percentunit",
        names.GENERATOR_CPU_SHARE,
        CPU_SHARE_LIMIT,
        "At the line (Locust's own warning) the process can not keep its schedule.",
    ),
    _generator_panel(
        key="generator_unsent",
        title="Load generator: arrivals due, not sent",
        unit="short",
        description="Late: due and not yet sent (nor dropped at max_in_flight). Never sent: still "
        "not sent when the load stopped; never counted as the system's latency or error.",
        queries=(
            _q(
                f"sum by (worker) ({names.GENERATOR_ARRIVALS_DUE} - {names.GENERATOR_ARRIVALS_SENT}"
                f" - {names.GENERATOR_ARRIVALS_DROPPED})",
                "generator {{worker}} late",
            ),
            _q(f"sum by (worker) ({names.GENERATOR_ARRIVALS_NEVER_SENT})", "generator {{worker}} never sent"),
        ),
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
