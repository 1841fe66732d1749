"""Was the load generator behind?  A verdict over a window where it was is undetermined.

A latency is measured from each arrival's intended start (wrk2's correction), so a generator
that sends late adds its own lateness to every latency, and one that never sends an arrival
offers less load than the scenario says.  Neither is the system's doing.  In a verdict's
window the generator was *behind* when any of these held (the thresholds, and why):

- **send lag**: ``start - intended_start`` over the window's arrivals, at the quantile the
  verdict judges (the median for a p50, the p99 for a p99 and for any verdict not on a
  latency: the lateness that could move that statistic), is above
  ``max(SEND_LAG_FLOOR_S, SEND_LAG_SHARE x bound)`` for a latency bound, and above
  ``SEND_LAG_LIMIT_S`` for any other verdict.  A tenth of the bound is lateness the verdict
  could mistake for the system's; below the 25 ms floor, gevent's own scheduling jitter on a
  busy machine would make every tight bound undecidable.  A quarter second late moves an
  arrival across the one-second bins the rates and the recovery are measured in.
- **event loop lag**: in most of the window's seconds (the median of each second's worst) a
  timer due every ~100 ms fired more than ``LOOP_LAG_LIMIT_S`` late: the process's hub was
  blocked, so responses were read late too (their ``end`` is late).  One stall (a garbage
  collection, a start-up) is not "behind": what it did to the arrivals is in the send lag.
- **CPU**: a generator process used ``CPU_SHARE_LIMIT`` (90%) of its core or more on average
  over the window, Locust's own warning line: past it, the two signs above follow.
- **arrivals never sent**: any arrival due in the window that was never sent.  It is counted
  here and never as the system's latency or error.

What would decide it: more generator processes (``--workers N``), a lower rate, or a machine
with more cores.

A verdict whose window reaches past the moment a generator worker was lost
(:mod:`harness.analysis.lost_workers`) is undetermined by the same gate, naming the worker:
part of the load the scenario offered there has no record.  What would decide it: a rerun,
with every worker running to the end.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from harness.analysis.estimates import percentile
from harness.analysis.inputs import RunInputs
from harness.analysis.windows import expectation_window
from harness.records.generator import GeneratorSample
from harness.records.summary import (
    GeneratorHealth,
    GeneratorLimits,
    GeneratorWindowFigures,
    LostWorker,
    ProcessFigures,
    WorkerTotals,
)
from harness.records.verdicts import Verdict
from model.expectations import LATENCY_METRICS, Expectation
from model.generator_limits import (
    CPU_SHARE_LIMIT,
    LOOP_LAG_LIMIT_S,
    SEND_LAG_FLOOR_S,
    SEND_LAG_LIMIT_S,
    SEND_LAG_SHARE,
)

__all__ = [
    "CPU_SHARE_LIMIT",
    "FELL_BEHIND",
    "LOOP_LAG_LIMIT_S",
    "LOST_WORKER",
    "SEND_LAG_FLOOR_S",
    "SEND_LAG_LIMIT_S",
    "SEND_LAG_SHARE",
    "GeneratorWindow",
    "ProcessHealth",
    "behind_reasons",
    "blames_generator",
    "gated",
    "generator_summary",
    "generator_window",
    "judged_with_generator",
    "lost_reasons",
    "send_lag_limit",
]

# How a reason that blames the generator begins: the report links such a verdict to its chart.
FELL_BEHIND = "the load generator fell behind"
WHAT_WOULD_DECIDE = "more generator processes (--workers N), a lower rate, or a machine with more cores"
# How a reason that names a worker lost mid-run begins.
LOST_WORKER = "a load generator worker was lost"
WHAT_WOULD_DECIDE_LOST = "a rerun, with every worker running to the end of the load"


@dataclass(frozen=True, kw_only=True)
class ProcessHealth:
    """One generator process's figures over a window (from its health samples)."""

    worker: str
    loop_lag_max_s: float  # the median over the window's samples of each one's worst
    cpu_share_max: float  # the mean over the window's samples
    never_sent: int  # arrivals it never sent, when the window reaches its final backlog


@dataclass(frozen=True, kw_only=True)
class GeneratorWindow:
    """How the load generator kept up over one window of run seconds."""

    start: float
    end: float
    arrivals: int  # first attempts sent whose intended start falls in the window
    send_lag_p99_s: float | None  # None: no arrival in the window
    processes: tuple[ProcessHealth, ...] = ()
    # The send lag at the quantile the verdict judges (its median for a p50), None: none sent
    judged_quantile: float = 0.99
    send_lag_judged_s: float | None = None
    lost: tuple[LostWorker, ...] = ()  # workers lost before the window's end

    @classmethod
    def of(
        cls,
        lags: Iterable[tuple[float, float]],
        start: float,
        end: float,
        processes: Sequence[ProcessHealth] = (),
        quantile: float = 0.99,
        lost: Sequence[LostWorker] = (),
    ) -> GeneratorWindow:
        """From ``(intended_start, send_lag)`` pairs in run seconds, those in ``[start, end)``;
        ``quantile`` is the one the verdict judges (1.0 for a max)."""
        in_window = [lag for intended, lag in lags if start <= intended < end]
        p99 = percentile(in_window, 0.99) if in_window else math.nan
        judged = (
            (max(in_window) if quantile >= 1.0 else percentile(in_window, quantile))
            if in_window
            else math.nan
        )
        return cls(
            start=start,
            end=end,
            arrivals=len(in_window),
            send_lag_p99_s=None if math.isnan(p99) else p99,
            processes=tuple(processes),
            judged_quantile=quantile,
            send_lag_judged_s=None if math.isnan(judged) else judged,
            lost=tuple(w for w in lost if w.lost_at_s < end),
        )

    def figures(self, name: str, behind: Sequence[str] = ()) -> GeneratorWindowFigures:
        """The window as ``summary.json``'s ``generator.windows`` holds it, named."""
        return GeneratorWindowFigures(
            name=name,
            start_s=round(self.start, 2),
            end_s=round(self.end, 2),
            arrivals=self.arrivals,
            send_lag_p99_ms=None if self.send_lag_p99_s is None else round(self.send_lag_p99_s * 1000, 1),
            processes=tuple(
                ProcessFigures(
                    worker=p.worker,
                    loop_lag_max_ms=round(p.loop_lag_max_s * 1000, 1),
                    cpu_share_max=round(p.cpu_share_max, 3),
                    never_sent=p.never_sent,
                )
                for p in self.processes
            ),
            behind=tuple(behind),
        )

    def as_json(self) -> dict[str, object]:
        """The window as a verdict's evidence holds it: its figures, without a name."""
        out = self.figures("").to_json()
        del out["name"], out["behind"]
        if self.lost:
            out["lost_workers"] = [w.to_json() for w in self.lost]
        return out


def send_lag_limit(bound_s: float | None) -> float:
    """The send-lag p99 past which a verdict with this latency bound (or none) is undecidable.

    >>> send_lag_limit(0.05), send_lag_limit(2.0), send_lag_limit(None)
    (0.025, 0.2, 0.25)
    """
    if bound_s is None:
        return SEND_LAG_LIMIT_S
    return max(SEND_LAG_FLOOR_S, SEND_LAG_SHARE * bound_s)


def behind_reasons(window: GeneratorWindow, bound_s: float | None) -> list[str]:
    """Each way the generator was behind in ``window``, in words with its figure; empty when
    it kept up."""
    reasons = []
    limit = send_lag_limit(bound_s)
    lag = window.send_lag_judged_s
    if lag is not None and lag > limit:
        q = window.judged_quantile
        at = "max" if q >= 1.0 else "median" if q == 0.5 else f"p{q * 100:g}"
        reasons.append(f"its send lag {at} was {lag * 1000:.0f} ms (limit {limit * 1000:.0f} ms)")
    for p in window.processes:
        if p.never_sent:
            reasons.append(f"{p.worker} never sent {p.never_sent} arrivals that were due")
        if p.cpu_share_max >= CPU_SHARE_LIMIT:
            reasons.append(f"{p.worker} used {p.cpu_share_max:.0%} of its CPU core on average")
        if p.loop_lag_max_s > LOOP_LAG_LIMIT_S:
            reasons.append(f"{p.worker}'s event loop ran {p.loop_lag_max_s * 1000:.0f} ms late")
    return reasons


def lost_reasons(window: GeneratorWindow) -> list[str]:
    """Each generator worker lost before ``window`` ended, in words with its figures.

    >>> w = LostWorker(worker="1", lost_at_s=12.3, arrivals_without_record=523, shard_closed=False)
    >>> lost_reasons(GeneratorWindow.of([], 0.0, 30.0, lost=[w]))
    ['worker 1 was lost 12.3 s into the run: 523 of its arrivals have no record']
    """
    return [
        f"worker {w.worker} was lost {w.lost_at_s:.1f} s into the run: "
        f"{w.arrivals_without_record} of its arrivals have no record"
        for w in window.lost
    ]


def blames_generator(reason: str | None) -> bool:
    """Whether a verdict's reason says the load generator fell behind (among its reasons).

    >>> blames_generator(f"{FELL_BEHIND} in 0.0-9.0 s: ..."), blames_generator(None)
    (True, False)
    """
    return FELL_BEHIND in (reason or "")


def gated(verdict: Verdict, window: GeneratorWindow, bound_s: float | None) -> Verdict:
    """``verdict``, or undetermined naming the load generator when it was behind in ``window``,
    or a worker of it was lost before the window ended.

    A pass is not kept either: the load the scenario offers was not the load sent (or recorded).
    """
    reasons, lost = behind_reasons(window, bound_s), lost_reasons(window)
    evidence = {**verdict.evidence, "generator": window.as_json()}
    if not reasons and not lost:
        return replace(verdict, evidence=evidence)
    span = f"{window.start:.1f}-{window.end:.1f} s"
    parts = []
    if reasons:
        parts.append(
            f"{FELL_BEHIND} in {span}: {'; '.join(reasons)}; what this run measured there is the "
            f"generator, not the system. To decide it: {WHAT_WOULD_DECIDE}"
        )
    if lost:
        parts.append(
            f"{LOST_WORKER} before {window.end:.1f} s: {'; '.join(lost)}; what this run measured "
            f"in {span} is not all the load the scenario offered. To decide it: {WHAT_WOULD_DECIDE_LOST}"
        )
    reason = "; and ".join(parts)
    if verdict.outcome == "undetermined":
        reason = f"{verdict.reason}; and {reason}"
    return Verdict(
        expectation=verdict.expectation,
        outcome="undetermined",
        observed=verdict.observed,
        reason=reason,
        evidence=evidence,
    )


def _worker_health(samples: Sequence[GeneratorSample], start: float, end: float) -> list[ProcessHealth]:
    """Each generator process's figures over ``[start, end]`` (samples in run seconds)."""
    found = []
    for worker in sorted({s.worker for s in samples}):
        mine = sorted((s for s in samples if s.worker == worker), key=lambda s: s.t)
        inside = [s for s in mine if s.t > start and s.t - s.window_s < end]
        final = next((s for s in reversed(mine) if s.stopped), None)
        never = 0
        if final is not None and final.never_sent:
            # Never sent: due from the moment its backlog last began to grow, to the end.
            caught_up = [s.t for s in mine if s.due - s.sent - s.dropped <= 0]
            behind_from = max(caught_up, default=-math.inf)
            never = final.never_sent if end >= behind_from else 0
        if not inside and not never:
            continue
        found.append(
            ProcessHealth(
                worker=f"generator {worker}",
                loop_lag_max_s=statistics.median(s.loop_lag_max_s for s in inside) if inside else 0.0,
                cpu_share_max=statistics.fmean(s.cpu_share for s in inside) if inside else 0.0,
                never_sent=never,
            )
        )
    return found


def generator_window(inputs: RunInputs, start: float, end: float, quantile: float = 0.99) -> GeneratorWindow:
    """How the generator kept up over ``[start, end)`` of run seconds: the send lag of the
    checkouts' first attempts intended in it, and each generator process's health there."""
    lags = [
        (r.intended, r.start - r.intended)
        for r in inputs.rows
        if r.kind == "checkout" and r.attempt == 0 and r.start is not None
    ]
    health = _worker_health(inputs.generator, start, end)
    return GeneratorWindow.of(lags, start, end, health, quantile, inputs.lost_workers)


_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}


def _span_and_bound(e: Expectation, inputs: RunInputs) -> tuple[float, float, float | None]:
    """The run seconds a verdict rests on, and its latency bound (None: not a latency's)."""
    if e.kind in ("compare", "relative"):
        window, _ = expectation_window(inputs, e.window, e.mode)
        latency = e.metric in LATENCY_METRICS and e.kind == "compare"
        return window.start, window.end, e.value if latency else None
    fault = next((f for f in inputs.faults if f.name == e.window), None)
    if e.kind == "drains" and fault is not None:
        return fault.start, fault.end, None
    if e.kind == "recovers" and fault is not None and e.value is not None:
        observe = max(e.value, inputs.scenario.metastability.window)
        return fault.start, min(inputs.load_end, fault.end + observe), None
    return 0.0, inputs.load_end, None


def judged_with_generator(e: Expectation, inputs: RunInputs, verdict: Verdict) -> Verdict:
    """``verdict`` with the generator's figures over its window, undetermined when the
    generator was behind there."""
    start, end, bound = _span_and_bound(e, inputs)
    # The lateness that could move the statistic judged: a p50's by the median send lag.
    quantile = _QUANTILES.get(e.stat or "", 0.99) if bound is not None else 0.99
    return gated(verdict, generator_window(inputs, start, end, quantile), bound)


def generator_summary(inputs: RunInputs) -> GeneratorHealth:
    """``summary.json``'s ``generator``: the limits, each stage's window and the whole run
    (send lag, each process's figures, and whether it was behind), and each process's totals."""
    windows = [("run", 0.0, inputs.load_end)]
    start = 0.0
    for stage in inputs.scenario.load.stages:
        windows.append((stage.name, start, min(start + stage.duration, inputs.load_end)))
        start += stage.duration
    out = []
    for name, w0, w1 in windows:
        window = generator_window(inputs, w0, w1)
        out.append(window.figures(name, behind_reasons(window, None)))
    workers = {}
    for worker in sorted({s.worker for s in inputs.generator}):
        mine = sorted((s for s in inputs.generator if s.worker == worker), key=lambda s: s.t)
        last = mine[-1]
        workers[worker] = WorkerTotals(
            due=last.due, sent=last.sent, dropped=last.dropped,
            never_sent=max((s.never_sent for s in mine), default=0),
            cpu_share_max=round(max(s.cpu_share for s in mine), 3),
            loop_lag_max_ms=round(max(s.loop_lag_max_s for s in mine) * 1000, 1),
            send_lag_max_ms=round(max((s.send_lag_max_s or 0.0) for s in mine) * 1000, 1),
        )  # fmt: skip
    limits = GeneratorLimits(
        send_lag_floor_ms=SEND_LAG_FLOOR_S * 1000, send_lag_share_of_bound=SEND_LAG_SHARE,
        send_lag_limit_ms=SEND_LAG_LIMIT_S * 1000, loop_lag_ms=LOOP_LAG_LIMIT_S * 1000,
        cpu_share=CPU_SHARE_LIMIT,
    )  # fmt: skip
    return GeneratorHealth(limits=limits, windows=tuple(out), workers=workers)
