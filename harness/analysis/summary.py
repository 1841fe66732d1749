"""A run's summary (the body of summary.json): figures per lane, orders, retry amplification,
recovery and the ladder after the last fault on each lane, verdicts and the reading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.analysis.dip import lane_dip
from harness.analysis.estimates import percentile
from harness.analysis.evaluate import judge
from harness.analysis.figures import QUANTILES, lane_figures
from harness.analysis.inputs import RunInputs
from harness.analysis.ladder import Rung, rung
from harness.analysis.orders import reconcile
from harness.analysis.reading import reading
from harness.analysis.recovery import lane_recovery

__all__ = ["analyse"]


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
            # One question for both detectors (and the ladder): the same trigger, baseline, bins.
            question = inputs.recovery_question(
                lane=lane, trigger=last, observe_s=scenario.metastability.window
            )
            result = lane_recovery(question)
            dip = lane_dip(question)
            metastability[lane] = {
                **result.as_json(),
                "recovered": result.outcome == "recovered",
                "window_s": question.observe_s,
                "dipped": dip.dipped,
                "dip_reason": dip.reason,
            }
            if not scenario.stack.builtin:
                continue  # the ladder's rung is the checkout's retry policy at its slow hop
            rungs.append(
                rung(
                    scenario, question, slow_hop=last.dependency, timeline=inputs.attempt_timeline,
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
