"""A run's summary (the body of summary.json): figures per lane, orders, retry amplification,
recovery and the ladder after the last fault on each lane, verdicts and the reading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from harness.analysis.dip import lane_dip
from harness.analysis.estimates import percentile
from harness.analysis.evaluate import judge
from harness.analysis.figures import QUANTILES, lane_figures
from harness.analysis.generator import generator_summary
from harness.analysis.inputs import RunInputs
from harness.analysis.ladder import Rung, rung
from harness.analysis.orders import reconcile
from harness.analysis.reading import reading
from harness.analysis.recovery import lane_recovery
from harness.records.summary import LaneRecovery, LaneSummary, LatencyQuantiles, Quantiles, Summary

__all__ = ["analyse"]


def _ms(values: Sequence[float], stat: str) -> float | None:
    value = max(values, default=math.nan) if stat == "max" else percentile(values, QUANTILES[stat])
    return None if math.isnan(value) else round(value * 1000, 1)


def _quantiles(values: Sequence[float]) -> Quantiles:
    return Quantiles(p50=_ms(values, "p50"), p95=_ms(values, "p95"), p99=_ms(values, "p99"))


def _latency(values: Sequence[float]) -> LatencyQuantiles:
    return LatencyQuantiles(
        p50=_ms(values, "p50"), p95=_ms(values, "p95"), p99=_ms(values, "p99"), max=_ms(values, "max")
    )


def analyse(inputs: RunInputs) -> Summary:
    """The run's summary (the body of summary.json) with its verdicts; never raises on the
    verdicts or the reading: what breaks there is reported as such."""
    scenario = inputs.scenario
    lanes: dict[str, LaneSummary] = {}
    for lane in scenario.load.lanes:
        fig = lane_figures(inputs.rows, lane, 0.0, inputs.load_end)
        lanes[lane] = LaneSummary(
            requests=fig.requests,
            errors=fig.errors,
            error_rate=round(fig.error_rate, 4) if fig.requests else None,
            throughput_rps=round(fig.throughput, 3),
            latency_ms=_latency(fig.waits),
            latency_ok_ms=_latency(fig.latencies),
            fulfillment_ms=_quantiles(fig.fulfillment_waits) if lane == "async" else None,
            orders=reconcile(inputs, lane) if scenario.stack.keeps_ledger else None,
        )
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
            metastability[lane] = LaneRecovery(
                lane=result.lane,
                trigger=result.trigger,
                outcome=result.outcome,
                recovery_s=result.seconds,
                reason=result.reason,
                evidence=result.evidence.record() if result.evidence else None,
                recovered=result.outcome == "recovered",
                window_s=question.observe_s,
                dipped=dip.dipped,
                dip_reason=dip.reason,
            )
            if not scenario.stack.builtin:
                continue  # the ladder's rung is the checkout's retry policy at its slow hop
            rungs.append(
                rung(
                    scenario, question, slow_hop=last.dependency, timeline=inputs.attempt_timeline,
                    recovery_s=result.seconds, outcome=result.outcome,
                )
            )  # fmt: skip
    # -- end recovery --
    # The figures first: the verdicts on orders and the reading read them.
    figures = Summary(
        scenario=scenario.name,
        time_scale=scenario.time_scale,
        duration_s=round(inputs.load_end, 1),
        lanes=lanes,
        retry_amplification=amplification,
        chaos=tuple(f.record() for f in inputs.faults),
        drain_s={name: (round(v, 1) if v is not None else None) for name, v in inputs.drains.items()},
        metastability=metastability,
        ladder={r.lane: r.record() for r in rungs},
        generator=generator_summary(inputs),
        lost_workers=inputs.lost_workers,
        passed=False,
    )
    verdicts = tuple(judge(e, inputs, figures) for e in scenario.expectations)
    try:
        lines = (*reading(inputs, figures), *(r.reading() for r in rungs))
    except Exception as exc:  # the figures and verdicts above stand without it
        lines = (f"The reading could not be written (internal error: {type(exc).__name__}: {exc}).",)
    return replace(figures, verdicts=verdicts, passed=all(v.passed for v in verdicts), reading=lines)
