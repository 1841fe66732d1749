"""From what a run recorded to what it means: per-lane figures, verdicts, metastability.

Inputs are plain data (the request log, the chaos record, the ledgers, metric deltas), so
everything here is a pure function and is tested on made-up runs.

Latency figures are the time each shopper waited, from the arrival's intended start (so a
stall counts in full) to the answer, a failure's included (``of successes`` asks for
successful ones only); error rates are over every checkout attempt; goodput is successful
checkouts per second by the time they completed.

Every verdict is pass, fail or undetermined, decided by the figures' 95% intervals
(:mod:`harness.analysis.estimates`).  ``p99 < 1s`` passes when the whole interval is under 1 s, fails
when none of it is, and is undetermined otherwise (and says why: too few samples to bound the
p99 from above, or an interval straddling the bound).  Against the baseline each side is
taken at its own interval, so a decision is wrong at most 5% of the time: ``at most 20% above
baseline`` passes when the window's top is at most 1.2 x the baseline's bottom, and fails when
the window's bottom is over 1.2 x the baseline's top.  For example a window of [0.40, 0.45] s
against a baseline of [0.38, 0.41] s passes (0.45 <= 0.456); [0.40, 0.50] s is undetermined
(0.50 > 0.456, but 0.40 is not over 1.2 x 0.41 = 0.492); [0.50, 0.60] s fails (0.50 > 0.492).
``within 20% of baseline`` also needs the window's bottom at least 0.8 x the baseline's top to
pass, and fails under 0.8 x its bottom.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.analysis.estimates import (
    Estimate,
    count_rate_interval,
    mean_interval,
    percentile,
    percentile_interval,
    proportion_interval,
    samples_to_bound,
)
from harness.analysis.ladder import Rung, rung
from harness.analysis.recovery import Dip, Recovery, lane_dip, lane_recovery, recovery_verdict
from harness.analysis.verdicts import Outcome, Verdict
from harness.records.schema import AttemptTimeline, RequestRecord
from model.expectations import Expectation
from model.scenario import Scenario

__all__ = [
    "FaultWindow",
    "LaneFigures",
    "Row",
    "RunInputs",
    "analyse",
    "evaluate",
    "format_figure",
    "goodput_series",
    "judge",
    "lane_figures",
    "percentile",
]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class Row:
    """One request record as the analysis sees it: times are seconds since the run's t0."""

    intended: float
    end: float
    lane: str
    kind: str  # checkout | fulfillment | dropped
    code: int
    attempt: int
    order_id: str
    start: float | None = None  # when this attempt was sent (None: dropped, or not recorded)

    @property
    def ok(self) -> bool:
        return 200 <= self.code <= 299

    @property
    def latency(self) -> float:
        return self.end - self.intended

    @classmethod
    def from_record(cls, rec: RequestRecord, t0: float) -> Row:
        return cls(
            rec.intended_start - t0,
            rec.end - t0,
            rec.lane,
            rec.kind,
            rec.status,
            rec.attempt,
            rec.order_id,
            None if rec.start is None else rec.start - t0,
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
    # attempts that went out per lane and dependency through the run; times in run seconds
    attempt_timeline: AttemptTimeline | None = None


@dataclass(frozen=True, kw_only=True)
class LaneFigures:
    """One lane's checkouts (and fulfilments) over a window of intended starts.

    A latency is the time the shopper waited, from the intended start to the answer: a failed
    request counts as the time until its failure, a success-only figure is asked for by name.
    """

    requests: int
    errors: int
    waits: tuple[float, ...]  # every checkout: seconds from intended start to the answer
    latencies: tuple[float, ...]  # successful checkouts only
    fulfillment_waits: tuple[float, ...]  # every order followed: until fulfilled, failed or given up
    fulfillments: tuple[float, ...]  # fulfilled orders only
    seconds: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else math.nan

    def samples(self, metric: str, successes_only: bool = False) -> tuple[float, ...]:
        if metric == "checkout":
            return self.latencies if successes_only else self.waits
        return self.fulfillments if successes_only else self.fulfillment_waits

    def estimate(self, metric: str, stat: str | None, successes_only: bool = False) -> Estimate:
        """The figure with its 95% interval (see :mod:`harness.analysis.estimates`)."""
        if metric == "error_rate":
            return proportion_interval(self.errors, self.requests)
        if metric in ("throughput", "goodput"):
            return count_rate_interval(self.requests - self.errors, self.seconds)
        values = self.samples(metric, successes_only)
        if stat == "max":
            # the slowest of these very requests: a fact about them, not an estimate
            top = max(values, default=math.nan)
            return (
                Estimate(top, top, top, len(values)) if values else Estimate(math.nan, -math.inf, math.inf, 0)
            )
        if stat == "mean":
            return mean_interval(values)
        return percentile_interval(values, QUANTILES[stat or "p50"])

    def stat(self, metric: str, stat: str | None, successes_only: bool = False) -> float:
        return self.estimate(metric, stat, successes_only).value


def lane_figures(rows: Iterable[Row], lane: str, start: float, end: float) -> LaneFigures:
    """Figures for arrivals intended in [start, end)."""
    mine = [r for r in rows if r.lane == lane and start <= r.intended < end]
    checkouts = [r for r in mine if r.kind == "checkout"]
    followed = [r for r in mine if r.kind == "fulfillment"]
    return LaneFigures(
        requests=len(checkouts),
        errors=sum(1 for r in checkouts if not r.ok),
        waits=tuple(r.latency for r in checkouts),
        latencies=tuple(r.latency for r in checkouts if r.ok),
        fulfillment_waits=tuple(r.latency for r in followed),
        fulfillments=tuple(r.latency for r in followed if r.ok),
        seconds=max(end - start, 0.0),
    )


def goodput_series(rows: Iterable[Row], lane: str, end: float, step: float = 1.0) -> list[float]:
    """Successful checkouts per second, by completion time, from 0 to ``end``."""
    buckets = [0.0] * max(1, math.ceil(end / step))
    for r in rows:
        if r.lane == lane and r.kind == "checkout" and r.ok and 0 <= r.end < end:
            buckets[int(r.end // step)] += 1.0 / step
    return buckets


@dataclass(frozen=True)
class _Window:
    """An expectation's window in run seconds, and the fault it is about, as applied."""

    start: float
    end: float
    fault: FaultWindow | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_s": round(self.start, 2), "end_s": round(self.end, 2)}
        if self.fault is not None:
            out["fault"] = self.fault.as_json()
        return out


def _window(inputs: RunInputs, name: str | None, mode: str | None) -> tuple[_Window, str | None]:
    """The window an expectation names, and why it can not be judged over it (or None)."""
    if name is None:
        return _Window(0.0, inputs.load_end), None
    fault = next((f for f in inputs.faults if f.name == name), None)
    steps = {step.name for step in inputs.scenario.chaos}
    if fault is not None:
        window = _Window(fault.start, fault.end, fault)
    elif name in steps:
        start, end = inputs.scenario.window(name)
        return _Window(start, end), f"fault {name} has no record of being applied"
    else:
        window = _Window(*inputs.scenario.window(name))
    if mode == "after":
        window = _Window(window.end, inputs.load_end, window.fault)
    if fault is not None and not fault.applied:
        return window, f"fault {name} was never applied"
    if window.end <= window.start:
        return window, f"the window {window.start:.1f}-{window.end:.1f} s is empty: the load ended first"
    return window, None


def _pre_window(inputs: RunInputs) -> tuple[float, float]:
    """The baseline before any fault was applied: the recovery detector's pre-trigger window."""
    b0, b1 = inputs.scenario.baseline_window()
    first = min((f.start for f in inputs.faults), default=b1)
    return b0, min(b1, first)


def lane_recovery_after(inputs: RunInputs, lane: str, trigger: FaultWindow, observe_s: float) -> Recovery:
    """Recovery of ``lane`` after ``trigger``, against its success rate in the baseline before
    any fault was applied."""
    scenario = inputs.scenario
    return lane_recovery(
        inputs.rows,
        lane,
        trigger,
        pre_window=_pre_window(inputs),
        settings=scenario.metastability,
        observe_s=observe_s,
        load_end=min(inputs.load_end, scenario.duration_s),
        last_attempt=scenario.load.impatient.retries,
        resolution_s=scenario.time_scale,
    )


def lane_dip_after(inputs: RunInputs, lane: str, trigger: FaultWindow, observe_s: float) -> Dip:
    """Whether ``trigger`` pushed ``lane`` below the recovery detector's bar, against the same
    baseline as :func:`lane_recovery_after`."""
    scenario = inputs.scenario
    return lane_dip(
        inputs.rows,
        lane,
        trigger,
        pre_window=_pre_window(inputs),
        settings=scenario.metastability,
        observe_s=observe_s,
        load_end=min(inputs.load_end, scenario.duration_s),
        last_attempt=scenario.load.impatient.retries,
        resolution_s=scenario.time_scale,
    )


def _fmt(metric: str | None, value: float) -> str:
    if math.isnan(value):
        return "no data"
    if math.isinf(value):
        return "unbounded"
    if metric in ("checkout", "fulfillment"):
        return f"{value:.3f}s"
    if metric == "error_rate":
        return f"{value:.1%}"
    return f"{value:.2f}/s"


def format_figure(metric: str | None, value: float) -> str:
    """A figure as the verdicts show it: ``0.412s``, ``5.0%``, ``9.80/s``, ``no data``."""
    return _fmt(metric, value)


def _shown(metric: str | None, est: Estimate) -> str:
    """``0.412s [0.390s, 0.450s] n=812``: the figure, its 95% interval and the samples."""
    return f"{_fmt(metric, est.value)} [{_fmt(metric, est.low)}, {_fmt(metric, est.high)}] n={est.n}"


def _too_few(stat: str | None, est: Estimate, *, above: bool) -> str | None:
    """Why the interval is open on the side a decision needs, or None if it is not."""
    if math.isfinite(est.high if above else est.low):
        return None
    if stat in QUANTILES:
        need = samples_to_bound(QUANTILES[stat], above=above)
        side = "above" if above else "below"
        return f"too few samples (n={est.n}; a {stat} needs at least {need} to bound it from {side} at 95%)"
    return f"too few samples (n={est.n})"


def _compare(e: Expectation, est: Estimate) -> tuple[Outcome, str | None]:
    """Pass when the whole interval meets the bound, fail when none of it does."""
    assert e.op is not None and e.value is not None
    holds = _OPS[e.op]
    upward = e.op in ("<", "<=")  # a ceiling: passing needs the interval's top, failing its bottom
    best, worst = (est.high, est.low) if upward else (est.low, est.high)
    if holds(best, e.value):
        return "pass", None
    if not holds(worst, e.value):
        return "fail", None
    return "undetermined", _too_few(e.stat, est, above=upward) or (
        f"the interval [{_fmt(e.metric, est.low)}, {_fmt(e.metric, est.high)}] straddles the bound "
        f"{_fmt(e.metric, e.value)}; more samples would decide it"
    )


def _relative(e: Expectation, now: Estimate, base: Estimate) -> tuple[Outcome, str | None]:
    """The window against the baseline, each by its interval (see :func:`evaluate`)."""
    assert e.value is not None
    hi, lo = 1 + e.value, 1 - e.value
    ok_up = now.high <= hi * base.low
    bad_up = now.low > hi * base.high
    if e.op == "above":
        ok, bad = ok_up, bad_up
    else:
        ok = ok_up and now.low >= lo * base.high
        bad = bad_up or now.high < lo * base.low
    if ok:
        return "pass", None
    if bad:
        return "fail", None
    # Without these two bounds a pass can not be shown.
    if window_open := _too_few(e.stat, now, above=True):
        return "undetermined", f"in the window, {window_open}"
    if baseline_open := _too_few(e.stat, base, above=False):
        return "undetermined", f"in the baseline, {baseline_open}"
    reason = (
        f"the window's [{_fmt(e.metric, now.low)}, {_fmt(e.metric, now.high)}] against the baseline's "
        f"[{_fmt(e.metric, base.low)}, {_fmt(e.metric, base.high)}] with {e.value:.0%} allowed decides "
        "neither way; more samples would decide it"
    )
    if baseline_open := _too_few(e.stat, base, above=True):
        reason += f"; in the baseline, {baseline_open}, so no fail can be shown"
    return "undetermined", reason


def _figure_verdict(e: Expectation, inputs: RunInputs) -> Verdict:
    assert e.lane and e.metric
    if e.lane not in inputs.scenario.load.lanes:
        return Verdict.undetermined(e.text, f"the {e.lane} lane got no load in this run")
    window, why = _window(inputs, e.window, e.mode)
    evidence: dict[str, Any] = {"window": window.as_json()}
    if why:
        return Verdict.undetermined(e.text, why, **evidence)
    figures = lane_figures(inputs.rows, e.lane, window.start, window.end)
    est = figures.estimate(e.metric, e.stat, e.successes_only)
    evidence["estimate"] = est.as_json()
    if figures.requests == 0:
        return Verdict.undetermined(
            e.text, f"no {e.lane} checkout was intended in {window.start:.1f}-{window.end:.1f} s", **evidence
        )
    if e.metric in ("throughput", "goodput") and window.end - window.start < 1.0:
        return Verdict.undetermined(
            e.text, f"the window is too short ({window.end - window.start:.2f} s)", **evidence
        )
    if est.n == 0:
        return Verdict.undetermined(e.text, f"no {e.metric} samples in the window", **evidence)
    if e.kind == "compare":
        outcome, reason = _compare(e, est)
        return Verdict(expectation=e.text, outcome=outcome, observed=_shown(e.metric, est), reason=reason,
                       evidence=evidence)  # fmt: skip
    b0, b1 = inputs.scenario.baseline_window()
    base = lane_figures(inputs.rows, e.lane, b0, b1).estimate(e.metric, e.stat, e.successes_only)
    evidence["baseline"] = {"window": _Window(b0, b1).as_json(), "estimate": base.as_json()}
    change = (est.value - base.value) / base.value if base.value else math.nan
    observed = f"{_shown(e.metric, est)} vs baseline {_shown(e.metric, base)} ({change:+.1%})"
    if base.n == 0:
        return Verdict.undetermined(e.text, "no baseline samples to compare with", observed, **evidence)
    outcome, reason = _relative(e, est, base)
    return Verdict(expectation=e.text, outcome=outcome, observed=observed, reason=reason, evidence=evidence)


def _fault_verdict(e: Expectation, inputs: RunInputs) -> tuple[FaultWindow | None, str | None]:
    """The applied fault a drain or a recovery is timed from, or why there is none."""
    fault = next((f for f in inputs.faults if f.name == e.window), None)
    if fault is None:
        return None, f"{e.window} is not a chaos step of this run"
    if not fault.applied:
        return fault, f"fault {fault.name} was never applied"
    return fault, None


def _drain_verdict(e: Expectation, inputs: RunInputs) -> Verdict:
    assert e.window and e.value is not None
    fault, why = _fault_verdict(e, inputs)
    evidence: dict[str, Any] = {"fault": fault.as_json() if fault else None}
    if why or fault is None:
        return Verdict.undetermined(e.text, why or "no fault", **evidence)
    accepted = sum(
        1 for r in inputs.rows if r.lane == "async" and r.kind == "checkout" and r.ok and r.end < fault.end
    )
    drained = inputs.drains.get(fault.name)
    evidence |= {"orders_accepted_before_end": accepted, "drain_s": drained}
    if accepted == 0:
        return Verdict.undetermined(
            e.text,
            f"no async order was accepted before {fault.name} ended: there was nothing to drain",
            **evidence,
        )
    if drained is None:
        if inputs.drain_cut_short:
            return Verdict.undetermined(
                e.text, "the wait for the drain was stopped before it drained", **evidence
            )
        return Verdict(expectation=e.text, outcome="fail", observed="did not drain", evidence=evidence)
    return Verdict(
        expectation=e.text, outcome="pass" if drained <= e.value else "fail",
        observed=f"drained {drained:.1f}s after ({accepted} orders accepted before)", evidence=evidence,
    )  # fmt: skip


def _recovery_verdict(e: Expectation, inputs: RunInputs) -> Verdict:
    assert e.lane and e.window and e.value is not None
    fault, why = _fault_verdict(e, inputs)
    evidence: dict[str, Any] = {"fault": fault.as_json() if fault else None}
    if why or fault is None:
        return Verdict.undetermined(e.text, why or "no fault", **evidence)
    observe_s = max(e.value, inputs.scenario.metastability.window)
    result = lane_recovery_after(inputs, e.lane, fault, observe_s)
    evidence["recovery"] = result.as_json()
    outcome, observed = recovery_verdict(result, e.value, e.negated)
    if outcome == "undetermined":
        return Verdict.undetermined(e.text, result.reason or "recovery could not be judged", **evidence)
    return Verdict(expectation=e.text, outcome=outcome, observed=observed, evidence=evidence)


def _orders_verdict(e: Expectation, summary: dict[str, Any]) -> Verdict:
    lane = summary["lanes"].get("async")
    if lane is None:
        return Verdict.undetermined(e.text, "the async lane got no load: it has no orders to account for")
    orders = lane.get("orders", {})
    evidence = {"orders": orders, "checkouts": lane.get("requests")}
    if e.kind == "no_loss":
        lost = orders.get("lost", 0)
        observed = f"{lost} lost of {orders.get('accepted', 0)} accepted"
        if lost:
            return Verdict(expectation=e.text, outcome="fail", observed=observed, evidence=evidence)
        if not orders.get("accepted"):
            reason = f"no order was accepted ({lane.get('requests', 0)} checkouts): none could be lost"
        elif not orders.get("fulfilled"):
            failed = orders.get("failed", 0)
            reason = f"none of the {orders['accepted']} accepted orders was fulfilled ({failed} failed)"
        elif orders.get("in_flight"):
            reason = (
                f"{orders['in_flight']} orders were still in flight when the wait for the drain was stopped"
            )
        else:
            return Verdict(expectation=e.text, outcome="pass", observed=observed, evidence=evidence)
        return Verdict.undetermined(e.text, reason, observed, **evidence)
    dup = orders.get("duplicate_side_effects", 0)
    observed = f"{dup} duplicated"
    if dup:
        return Verdict(expectation=e.text, outcome="fail", observed=observed, evidence=evidence)
    if not orders.get("fulfilled"):
        return Verdict.undetermined(
            e.text, "no order was fulfilled: no side effects to check", observed, **evidence
        )
    return Verdict(expectation=e.text, outcome="pass", observed=observed, evidence=evidence)


def evaluate(expectation: Expectation, inputs: RunInputs, summary: dict[str, Any]) -> Verdict:
    """One verdict: pass or fail when the data decide it, undetermined (and why) when not;
    the rules are in the module's docstring."""
    if expectation.kind in ("compare", "relative"):
        return _figure_verdict(expectation, inputs)
    if expectation.kind == "drains":
        return _drain_verdict(expectation, inputs)
    if expectation.kind == "recovers":
        return _recovery_verdict(expectation, inputs)
    return _orders_verdict(expectation, summary)


def judge(expectation: Expectation, inputs: RunInputs, summary: dict[str, Any]) -> Verdict:
    """:func:`evaluate`, and an undetermined verdict if the evaluation itself broke."""
    try:
        return evaluate(expectation, inputs, summary)
    except Exception as exc:  # one broken verdict must not cost the run its summary and report
        return Verdict.undetermined(expectation.text, f"internal error: {type(exc).__name__}: {exc}")


def _ms(values: Sequence[float], stats: Sequence[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for stat in stats:
        value = max(values, default=math.nan) if stat == "max" else percentile(values, QUANTILES[stat])
        out[stat] = None if math.isnan(value) else round(value * 1000, 1)
    return out


def analyse(inputs: RunInputs) -> dict[str, Any]:
    """The run's summary (the body of summary.json) with its verdicts; never raises on the
    verdicts or the reading: what breaks there is reported as such."""
    scenario = inputs.scenario
    lanes: dict[str, Any] = {}
    for lane in scenario.load.lanes:
        fig = lane_figures(inputs.rows, lane, 0.0, inputs.load_end)
        entry: dict[str, Any] = {
            "requests": fig.requests,
            "errors": fig.errors,
            "error_rate": round(fig.error_rate, 4) if fig.requests else None,
            "throughput_rps": round(fig.throughput, 3),
            "latency_ms": _ms(fig.waits, ("p50", "p95", "p99", "max")),
            "latency_ok_ms": _ms(fig.latencies, ("p50", "p95", "p99", "max")),
        }
        if lane == "async":
            entry["fulfillment_ms"] = _ms(fig.fulfillment_waits, ("p50", "p95", "p99"))
        if scenario.stack.keeps_ledger:
            entry["orders"] = reconcile(inputs, lane)
        lanes[lane] = entry
    # Attempts are counted by the checkout's own services; a system of the user's has none.
    amplification = {
        lane: (round(attempts / orders, 3) if orders else None)
        for lane, (attempts, orders) in inputs.attempts.items()
        if scenario.stack.builtin
    }
    # -- recovery (harness.analysis.recovery): after the last fault on each lane --
    metastability = {}
    rungs: list[Rung] = []
    for lane in scenario.load.lanes:
        faults = [f for f in inputs.faults if lane in f.lanes] or list(inputs.faults)
        if faults:
            last = max(faults, key=lambda f: f.end)
            result = lane_recovery_after(inputs, lane, last, scenario.metastability.window)
            dip = lane_dip_after(inputs, lane, last, scenario.metastability.window)
            metastability[lane] = {
                **result.as_json(),
                "recovered": result.outcome == "recovered",
                "window_s": scenario.metastability.window,
                "dipped": dip.dipped,
                "dip_reason": dip.reason,
            }
            if not scenario.stack.builtin:
                continue  # the ladder's rung is the checkout's retry policy at its slow hop
            rungs.append(
                rung(
                    scenario, inputs.rows, lane, last,
                    slow_hop=last.dependency, timeline=inputs.attempt_timeline,
                    pre_window=_pre_window(inputs), load_end=min(inputs.load_end, scenario.duration_s),
                    recovery_s=result.seconds, outcome=result.outcome,
                )
            )  # fmt: skip
    # -- end recovery --
    summary: dict[str, Any] = {
        "scenario": scenario.name,
        "time_scale": scenario.time_scale,
        "duration_s": round(inputs.load_end, 1),
        "lanes": lanes,
        "retry_amplification": amplification,
        "chaos": [f.as_json() for f in inputs.faults],
        "drain_s": {name: (round(v, 1) if v is not None else None) for name, v in inputs.drains.items()},
        "metastability": metastability,
        "ladder": {r.lane: r.as_json() for r in rungs},
    }
    verdicts = [judge(e, inputs, summary) for e in scenario.expectations]
    summary["verdicts"] = [v.as_json() for v in verdicts]
    summary["passed"] = all(v.passed for v in verdicts)
    try:
        summary["reading"] = reading(inputs, summary) + [r.reading() for r in rungs]
    except Exception as exc:  # the figures and verdicts above stand without it
        summary["reading"] = [
            f"The reading could not be written (internal error: {type(exc).__name__}: {exc})."
        ]
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
                f"The {lane} lane's {measure} per offered arrival was back "
                f"{round(m['recovery_s'], 3):g} s after {m['trigger']} was removed, and stayed back "
                f"for {round(m['window_s'], 3):g} s."
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
