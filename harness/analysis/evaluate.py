"""Each expectation of a scenario judged on a run: pass, fail or undetermined, and why.

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
from typing import Any

from harness.analysis.estimates import Estimate, samples_to_bound
from harness.analysis.figures import QUANTILES, lane_figures
from harness.analysis.figures import format_figure as _fmt
from harness.analysis.generator import judged_with_generator
from harness.analysis.inputs import FaultWindow, RunInputs
from harness.analysis.recovery import lane_recovery, recovery_verdict
from harness.analysis.windows import ExpectationWindow, expectation_window
from harness.records.summary import AsyncOrders, Summary
from harness.records.verdicts import Outcome, Verdict
from model.expectations import Expectation

__all__ = ["evaluate", "judge"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


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
    window, why = expectation_window(inputs, e.window, e.mode)
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
    evidence["baseline"] = {"window": ExpectationWindow(b0, b1).as_json(), "estimate": base.as_json()}
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
    result = lane_recovery(inputs.recovery_question(lane=e.lane, trigger=fault, observe_s=observe_s))
    evidence["recovery"] = result.as_json()
    outcome, observed = recovery_verdict(result, e.value, e.negated)
    if outcome == "undetermined":
        return Verdict.undetermined(e.text, result.reason or "recovery could not be judged", **evidence)
    return Verdict(expectation=e.text, outcome=outcome, observed=observed, evidence=evidence)


def _orders_verdict(e: Expectation, summary: Summary) -> Verdict:
    lane = summary.lanes.get("async")
    if lane is None:
        return Verdict.undetermined(e.text, "the async lane got no load: it has no orders to account for")
    # A system without the checkout's ledgers has no reconciliation: every count reads 0.
    orders = lane.orders if isinstance(lane.orders, AsyncOrders) else None
    evidence = {"orders": orders.to_json() if orders else {}, "checkouts": lane.requests}
    accepted, fulfilled = (orders.accepted, orders.fulfilled) if orders else (0, 0)
    if e.kind == "no_loss":
        lost = orders.lost if orders else 0
        observed = f"{lost} lost of {accepted} accepted"
        if lost:
            return Verdict(expectation=e.text, outcome="fail", observed=observed, evidence=evidence)
        if not accepted:
            reason = f"no order was accepted ({lane.requests} checkouts): none could be lost"
        elif not fulfilled:
            failed = orders.failed if orders else 0
            reason = f"none of the {accepted} accepted orders was fulfilled ({failed} failed)"
        elif orders and orders.in_flight:
            reason = f"{orders.in_flight} orders were still in flight when the wait for the drain was stopped"
        else:
            return Verdict(expectation=e.text, outcome="pass", observed=observed, evidence=evidence)
        return Verdict.undetermined(e.text, reason, observed, **evidence)
    dup = orders.duplicate_side_effects if orders else 0
    observed = f"{dup} duplicated"
    if dup:
        return Verdict(expectation=e.text, outcome="fail", observed=observed, evidence=evidence)
    if not fulfilled:
        return Verdict.undetermined(
            e.text, "no order was fulfilled: no side effects to check", observed, **evidence
        )
    return Verdict(expectation=e.text, outcome="pass", observed=observed, evidence=evidence)


def evaluate(expectation: Expectation, inputs: RunInputs, summary: Summary) -> Verdict:
    """One verdict: pass or fail when the data decide it, undetermined (and why) when not;
    the rules are in the module's docstring."""
    if expectation.kind in ("compare", "relative"):
        return _figure_verdict(expectation, inputs)
    if expectation.kind == "drains":
        return _drain_verdict(expectation, inputs)
    if expectation.kind == "recovers":
        return _recovery_verdict(expectation, inputs)
    return _orders_verdict(expectation, summary)


def judge(expectation: Expectation, inputs: RunInputs, summary: Summary) -> Verdict:
    """:func:`evaluate`, undetermined where the load generator was behind in the verdict's
    window (:mod:`harness.analysis.generator`), and undetermined if the evaluation broke."""
    try:
        return judged_with_generator(expectation, inputs, evaluate(expectation, inputs, summary))
    except Exception as exc:  # one broken verdict must not cost the run its summary and report
        return Verdict.undetermined(expectation.text, f"internal error: {type(exc).__name__}: {exc}")
