"""From what a run recorded to what it means: per-lane figures, verdicts, metastability.

Inputs are plain data (the request log, the chaos record, the ledgers, metric deltas), so
everything here is a pure function and is tested on made-up runs.

Latency figures are over successful checkouts, measured from each arrival's intended start
(so a stall counts in full); error rates are over every checkout attempt; goodput is
successful checkouts per second by the time they completed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.expectations import Expectation
from harness.recovery import Recovery, lane_recovery, recovery_verdict
from harness.scenario import Scenario

__all__ = [
    "FaultWindow",
    "LaneFigures",
    "Row",
    "RunInputs",
    "analyse",
    "evaluate",
    "goodput_series",
    "lane_figures",
    "percentile",
]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Row:
    """One request from the log: times are seconds since the run's t0."""

    intended: float
    end: float
    lane: str
    kind: str  # checkout | fulfillment | dropped
    code: int
    attempt: int
    order_id: str

    @property
    def ok(self) -> bool:
        return self.code in (200, 202)

    @property
    def latency(self) -> float:
        return self.end - self.intended

    @classmethod
    def parse(cls, raw: Sequence[Any], t0: float) -> Row:
        intended, end, lane, kind, code, attempt, order_id = raw
        return cls(
            float(intended) - t0,
            float(end) - t0,
            str(lane),
            str(kind),
            int(code),
            int(attempt),
            str(order_id),
        )


@dataclass(frozen=True, kw_only=True)
class FaultWindow:
    name: str
    dependency: str
    lanes: tuple[str, ...]
    type: str
    attributes: dict[str, float]
    start: float  # seconds since t0, as applied (planned if it never was)
    end: float  # its removal acknowledged (asked for, or planned, if it was not)
    applied: bool = True
    removed: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dependency": self.dependency,
            "lanes": list(self.lanes),
            "type": self.type,
            "attributes": self.attributes,
            "start_s": round(self.start, 2),
            "end_s": round(self.end, 2),
            "applied": self.applied,
            "removed": self.removed,
        }


@dataclass(frozen=True, kw_only=True)
class RunInputs:
    scenario: Scenario
    rows: tuple[Row, ...]
    faults: tuple[FaultWindow, ...]
    load_end: float  # seconds since t0 when the load stopped
    # async order ledger after the drain: order id -> status ("missing" when unknown)
    async_statuses: dict[str, str] = field(default_factory=dict)
    # lane -> dependency -> order id -> times its side effect was applied (the services' ledgers)
    side_effects: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # lane -> (downstream attempts, order requests) during the run
    attempts: dict[str, tuple[float, float]] = field(default_factory=dict)
    # fault name -> seconds after its end until every order accepted before then was finished
    drains: dict[str, float | None] = field(default_factory=dict)
    # The user stopped the wait for the drain: an order not finished yet is in flight, not lost.
    drain_cut_short: bool = False


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, kw_only=True)
class LaneFigures:
    requests: int
    errors: int
    latencies: tuple[float, ...]  # successful checkouts, seconds from intended start
    fulfillments: tuple[float, ...]
    seconds: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else math.nan

    def stat(self, metric: str, stat: str | None) -> float:
        if metric == "error_rate":
            return self.error_rate
        if metric in ("throughput", "goodput"):
            return self.throughput
        values = self.latencies if metric == "checkout" else self.fulfillments
        if stat == "max":
            return max(values, default=math.nan)
        if stat == "mean":
            return sum(values) / len(values) if values else math.nan
        return percentile(values, {"p50": 0.5, "p95": 0.95, "p99": 0.99}[stat or "p50"])


def lane_figures(rows: Iterable[Row], lane: str, start: float, end: float) -> LaneFigures:
    """Figures for arrivals intended in [start, end)."""
    checkouts = [r for r in rows if r.lane == lane and r.kind == "checkout" and start <= r.intended < end]
    fulfilled = [
        r.latency
        for r in rows
        if r.lane == lane and r.kind == "fulfillment" and r.ok and start <= r.intended < end
    ]
    return LaneFigures(
        requests=len(checkouts),
        errors=sum(1 for r in checkouts if not r.ok),
        latencies=tuple(r.latency for r in checkouts if r.ok),
        fulfillments=tuple(fulfilled),
        seconds=max(end - start, 0.0),
    )


def goodput_series(rows: Iterable[Row], lane: str, end: float, step: float = 1.0) -> list[float]:
    """Successful checkouts per second, by completion time, from 0 to ``end``."""
    buckets = [0.0] * max(1, math.ceil(end / step))
    for r in rows:
        if r.lane == lane and r.kind == "checkout" and r.ok and 0 <= r.end < end:
            buckets[int(r.end // step)] += 1.0 / step
    return buckets


def _window(inputs: RunInputs, name: str | None, mode: str | None) -> tuple[float, float]:
    if name is None:
        return 0.0, inputs.load_end
    fault = next((f for f in inputs.faults if f.name == name), None)
    start, end = (fault.start, fault.end) if fault else inputs.scenario.window(name)
    if mode == "after":
        return end, inputs.load_end
    return start, end


def lane_recovery_after(inputs: RunInputs, lane: str, trigger: FaultWindow, observe_s: float) -> Recovery:
    """Recovery of ``lane`` after ``trigger``, against its success rate in the baseline before
    any fault was applied."""
    scenario = inputs.scenario
    b0, b1 = scenario.baseline_window()
    first = min((f.start for f in inputs.faults), default=b1)
    return lane_recovery(
        inputs.rows,
        lane,
        trigger,
        pre_window=(b0, min(b1, first)),
        settings=scenario.metastability,
        observe_s=observe_s,
        load_end=min(inputs.load_end, scenario.duration_s),
        last_attempt=scenario.load.impatient.retries,
    )


def _fmt(metric: str | None, value: float) -> str:
    if math.isnan(value):
        return "no data"
    if metric in ("checkout", "fulfillment"):
        return f"{value:.3f}s"
    if metric == "error_rate":
        return f"{value:.1%}"
    return f"{value:.2f}"


def evaluate(expectation: Expectation, inputs: RunInputs, summary: dict[str, Any]) -> dict[str, Any]:
    """One verdict: the expectation, what was observed, and whether it held."""
    e = expectation
    observed: str
    passed: bool
    if e.kind in ("compare", "relative"):
        assert e.lane and e.metric
        start, end = _window(inputs, e.window, e.mode)
        value = lane_figures(inputs.rows, e.lane, start, end).stat(e.metric, e.stat)
        if e.kind == "compare":
            assert e.op and e.value is not None
            passed = not math.isnan(value) and _OPS[e.op](value, e.value)
            observed = _fmt(e.metric, value)
        else:
            assert e.value is not None
            b0, b1 = inputs.scenario.baseline_window()
            base = lane_figures(inputs.rows, e.lane, b0, b1).stat(e.metric, e.stat)
            change = (value - base) / base if base else math.nan
            passed = not math.isnan(change) and (change if e.op == "above" else abs(change)) <= e.value
            observed = f"{_fmt(e.metric, value)} vs baseline {_fmt(e.metric, base)} ({change:+.1%})"
    elif e.kind == "drains":
        assert e.window and e.value is not None
        drained = inputs.drains.get(e.window)
        passed = drained is not None and drained <= e.value
        observed = f"drained {drained:.1f}s after" if drained is not None else "did not drain"
    elif e.kind == "recovers":
        # -- recovery (harness.recovery) --
        assert e.lane and e.window and e.value is not None
        fault = next((f for f in inputs.faults if f.name == e.window), None)
        if fault is None:
            passed, observed = False, f"can not tell: {e.window} is not a chaos step"
        else:
            observe_s = max(e.value, inputs.scenario.metastability.window)
            outcome, observed = recovery_verdict(
                lane_recovery_after(inputs, e.lane, fault, observe_s), e.value, e.negated
            )
            passed = outcome == "pass"
        # -- end recovery --
    elif e.kind == "no_loss":
        lost = summary["lanes"].get("async", {}).get("orders", {}).get("lost", 0)
        passed, observed = lost == 0, f"{lost} lost"
    else:
        dup = summary["lanes"].get("async", {}).get("orders", {}).get("duplicate_side_effects", 0)
        passed, observed = dup == 0, f"{dup} duplicated"
    return {"expectation": e.text, "observed": observed, "passed": bool(passed)}


def _ms(values: Sequence[float], stats: Sequence[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for stat in stats:
        value = (
            max(values, default=math.nan)
            if stat == "max"
            else percentile(values, {"p50": 0.5, "p95": 0.95, "p99": 0.99}[stat])
        )
        out[stat] = None if math.isnan(value) else round(value * 1000, 1)
    return out


def analyse(inputs: RunInputs) -> dict[str, Any]:
    """The run's summary (the body of summary.json) with its verdicts."""
    scenario = inputs.scenario
    lanes: dict[str, Any] = {}
    for lane in scenario.load.lanes:
        fig = lane_figures(inputs.rows, lane, 0.0, inputs.load_end)
        entry: dict[str, Any] = {
            "requests": fig.requests,
            "errors": fig.errors,
            "error_rate": round(fig.error_rate, 4) if fig.requests else None,
            "throughput_rps": round(fig.throughput, 3),
            "latency_ms": _ms(fig.latencies, ("p50", "p95", "p99", "max")),
        }
        ledger = reconcile(inputs, lane)
        if lane == "async":
            entry["fulfillment_ms"] = _ms(fig.fulfillments, ("p50", "p95", "p99"))
        entry["orders"] = ledger
        lanes[lane] = entry
    amplification = {
        lane: (round(attempts / orders, 3) if orders else None)
        for lane, (attempts, orders) in inputs.attempts.items()
    }
    # -- recovery (harness.recovery): after the last fault on each lane --
    metastability = {}
    for lane in scenario.load.lanes:
        faults = [f for f in inputs.faults if lane in f.lanes] or list(inputs.faults)
        if faults:
            last = max(faults, key=lambda f: f.end)
            result = lane_recovery_after(inputs, lane, last, scenario.metastability.window)
            metastability[lane] = {
                **result.as_json(),
                "recovered": result.outcome == "recovered",
                "window_s": scenario.metastability.window,
            }
    # -- end recovery --
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "duration_s": round(inputs.load_end, 1),
        "lanes": lanes,
        "retry_amplification": amplification,
        "chaos": [f.as_json() for f in inputs.faults],
        "drain_s": {name: (round(v, 1) if v is not None else None) for name, v in inputs.drains.items()},
        "metastability": metastability,
    }
    summary["verdicts"] = [evaluate(e, inputs, summary) for e in scenario.expectations]
    summary["passed"] = all(v["passed"] for v in summary["verdicts"])
    summary["reading"] = reading(inputs, summary)
    return summary


def reconcile(inputs: RunInputs, lane: str) -> dict[str, int]:
    """Every order of the run against what the downstream services saw.

    async: each order that got its 202 is fulfilled, failed or lost (still unfinished after the
    drain, or never stored), or in flight when the user stopped the wait for the drain; each
    fulfilled order's side effects applied exactly once in effect.
    sync: each confirmed order's side effects applied once; a failed order may have left some
    behind (a charge for an order the shopper was told had failed).
    """
    rows = [r for r in inputs.rows if r.lane == lane and r.kind == "checkout"]
    effects = inputs.side_effects.get(lane, {})
    duplicated = sum(1 for deps in effects.values() for n in deps.values() if n > 1)
    if lane == "async":
        accepted = {r.order_id for r in rows if r.ok}
        statuses = [inputs.async_statuses.get(oid, "missing") for oid in accepted]
        complete = {oid for oid in accepted if inputs.async_statuses.get(oid) == "fulfilled"}
        missing = sum(1 for deps in effects.values() for oid in complete if deps.get(oid, 0) == 0)
        unfinished = statuses.count("accepted")
        in_flight = unfinished if inputs.drain_cut_short else 0
        return {
            "accepted": len(accepted),
            "fulfilled": statuses.count("fulfilled"),
            "failed": statuses.count("failed"),
            "lost": statuses.count("missing") + unfinished - in_flight,
            "in_flight": in_flight,
            "duplicate_side_effects": duplicated,
            "missing_side_effects": missing,
        }
    confirmed = {r.order_id for r in rows if r.ok}
    failed = {r.order_id for r in rows if not r.ok and r.order_id} - confirmed
    missing = sum(1 for deps in effects.values() for oid in confirmed if deps.get(oid, 0) == 0)
    payment = effects.get("payment", {})
    return {
        "confirmed": len(confirmed),
        "failed": len(failed),
        "failed_with_side_effects": sum(1 for oid in failed if any(d.get(oid, 0) for d in effects.values())),
        "charged_but_failed": sum(1 for oid in failed if payment.get(oid, 0)),
        "duplicate_side_effects": duplicated,
        "missing_side_effects": missing,
    }


def _describe(fault: FaultWindow) -> str:
    a = fault.attributes
    if fault.type == "latency":
        return f"{a.get('latency', 0) / 1000:g} s slow"
    if fault.type == "http_delay":
        return f"{a.get('latency', 0) / 1000:g} s slower"
    if fault.type == "down":
        return "down"
    if fault.type == "timeout":
        return "timing out"
    if fault.type == "http_error":
        return f"answering {int(a.get('status', 500))} to {a.get('rate', 0):.0%} of requests"
    return f"under {fault.type}"


def reading(inputs: RunInputs, summary: dict[str, Any]) -> list[str]:
    """A few sentences a person understands in a minute."""
    lines = []
    b0, b1 = inputs.scenario.baseline_window()
    for fault in inputs.faults:
        parts = [f"{fault.dependency} was {_describe(fault)} for {fault.end - fault.start:.0f} s"]
        if "sync" in inputs.scenario.load.lanes:
            sync = lane_figures(inputs.rows, "sync", fault.start, fault.end)
            if sync.requests:
                parts.append(f"{sync.error_rate:.0%} of sync checkouts failed")
        if "async" in inputs.scenario.load.lanes:
            during = lane_figures(inputs.rows, "async", fault.start, fault.end).stat("checkout", "p99")
            base = lane_figures(inputs.rows, "async", b0, b1).stat("checkout", "p99")
            if not math.isnan(during):
                parts.append(f"async 202 p99 was {during:.2f} s (baseline {base:.2f} s)")
            drained = inputs.drains.get(fault.name)
            parts.append(
                f"the backlog drained {drained:.0f} s later"
                if drained is not None
                else "the backlog did not drain"
            )
        lines.append(", ".join(parts) + ".")
    for lane, m in summary.get("metastability", {}).items():
        measure = "fulfilment" if lane == "async" else "success rate"
        if m["outcome"] == "undetermined":
            lines.append(
                f"Whether the {lane} lane recovered after {m['trigger']} can not be told: {m['reason']}."
            )
        elif m["outcome"] == "recovered":
            lines.append(
                f"The {lane} lane's {measure} per offered arrival was back {m['recovery_s']:.0f} s after "
                f"{m['trigger']} was removed, and stayed back for {m['window_s']:.0f} s."
            )
        elif m["outcome"] == "metastable":
            lines.append(
                f"The {lane} lane stayed down after {m['trigger']} was removed: {m['reason']}: "
                "a metastable failure."
            )
        else:
            lines.append(f"The {lane} lane did not recover after {m['trigger']}: {m['reason']}.")
    orders = summary["lanes"].get("async", {}).get("orders")
    if orders:
        lines.append(
            f"The async lane accepted {orders['accepted']} orders: {orders['fulfilled']} fulfilled, "
            f"{orders['failed']} failed, {orders['lost']} lost, "
            f"{orders['duplicate_side_effects']} duplicated side effects."
            + (
                f" {orders['in_flight']} were still in flight when the wait for the drain was stopped."
                if orders.get("in_flight")
                else ""
            )
        )
    sync_orders = summary["lanes"].get("sync", {}).get("orders")
    if sync_orders and (sync_orders["charged_but_failed"] or sync_orders["duplicate_side_effects"]):
        lines.append(
            f"The sync lane confirmed {sync_orders['confirmed']} orders; {sync_orders['charged_but_failed']} "
            f"shoppers were charged for an order they were told had failed, and "
            f"{sync_orders['duplicate_side_effects']} side effects were applied twice."
        )
    amp = summary.get("retry_amplification", {})
    if amp.get("sync") is not None:
        chain = len(inputs.scenario.stack.chain)
        lines.append(f"Each sync order cost {amp['sync']:.1f} downstream calls ({chain} without retries).")
    return lines
