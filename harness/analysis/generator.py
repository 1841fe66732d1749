"""Was the load generator behind?  A verdict over a window where it was is undetermined.

A latency is measured from each arrival's intended start (wrk2's correction), so a generator
that sends late adds its own lateness to every latency, and one that never sends an arrival
offers less load than the scenario says.  Neither is the system's doing.  In a verdict's
window the generator was *behind* when any of these held (the thresholds, and why):

- **send lag**: the p99 of ``start - intended_start`` over the window's arrivals is above
  ``max(SEND_LAG_FLOOR_S, SEND_LAG_SHARE x bound)`` for a latency bound, and above
  ``SEND_LAG_LIMIT_S`` for any other verdict.  A tenth of the bound is lateness the verdict
  could mistake for the system's; below the 25 ms floor, gevent's own scheduling jitter on a
  busy machine would make every tight bound undecidable.  A quarter second late moves an
  arrival across the one-second bins the rates and the recovery are measured in.
- **event loop lag**: a timer due every ~100 ms fired more than ``LOOP_LAG_LIMIT_S`` late:
  the process's hub was blocked, so responses were read late too (their ``end`` is late).
- **CPU**: a generator process used ``CPU_SHARE_LIMIT`` (90%) of its core or more, Locust's
  own warning line: past it, the two signs above follow.
- **arrivals never sent**: any arrival due in the window that was never sent.  It is counted
  here and never as the system's latency or error.

What would decide it: more generator processes (``--workers N``), a lower rate, or a machine
with more cores.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from harness.analysis.estimates import percentile
from harness.analysis.verdicts import Verdict

__all__ = [
    "CPU_SHARE_LIMIT",
    "LOOP_LAG_LIMIT_S",
    "SEND_LAG_FLOOR_S",
    "SEND_LAG_LIMIT_S",
    "SEND_LAG_SHARE",
    "GeneratorWindow",
    "ProcessHealth",
    "behind_reasons",
    "gated",
    "send_lag_limit",
]

SEND_LAG_FLOOR_S = 0.025
SEND_LAG_SHARE = 0.10
SEND_LAG_LIMIT_S = 0.25
LOOP_LAG_LIMIT_S = 0.1
CPU_SHARE_LIMIT = 0.9
WHAT_WOULD_DECIDE = "more generator processes (--workers N), a lower rate, or a machine with more cores"


@dataclass(frozen=True, kw_only=True)
class ProcessHealth:
    """One generator process's worst figures over a window (from its health samples)."""

    worker: str
    loop_lag_max_s: float
    cpu_share_max: float
    never_sent: int


@dataclass(frozen=True, kw_only=True)
class GeneratorWindow:
    """How the load generator kept up over one window of run seconds."""

    start: float
    end: float
    arrivals: int  # first attempts sent whose intended start falls in the window
    send_lag_p99_s: float | None  # None: no arrival in the window
    processes: tuple[ProcessHealth, ...] = ()

    @classmethod
    def of(
        cls,
        lags: Iterable[tuple[float, float]],
        start: float,
        end: float,
        processes: Sequence[ProcessHealth] = (),
    ) -> GeneratorWindow:
        """From ``(intended_start, send_lag)`` pairs in run seconds, those in ``[start, end)``."""
        in_window = [lag for intended, lag in lags if start <= intended < end]
        p99 = percentile(in_window, 0.99) if in_window else math.nan
        return cls(
            start=start,
            end=end,
            arrivals=len(in_window),
            send_lag_p99_s=None if math.isnan(p99) else p99,
            processes=tuple(processes),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "start_s": round(self.start, 2),
            "end_s": round(self.end, 2),
            "arrivals": self.arrivals,
            "send_lag_p99_ms": None if self.send_lag_p99_s is None else round(self.send_lag_p99_s * 1000, 1),
            "processes": [
                {
                    "worker": p.worker,
                    "loop_lag_max_ms": round(p.loop_lag_max_s * 1000, 1),
                    "cpu_share_max": round(p.cpu_share_max, 3),
                    "never_sent": p.never_sent,
                }
                for p in self.processes
            ],
        }


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
    if window.send_lag_p99_s is not None and window.send_lag_p99_s > limit:
        reasons.append(
            f"its send lag p99 was {window.send_lag_p99_s * 1000:.0f} ms (limit {limit * 1000:.0f} ms)"
        )
    for p in window.processes:
        if p.never_sent:
            reasons.append(f"{p.worker} never sent {p.never_sent} arrivals that were due")
        if p.cpu_share_max >= CPU_SHARE_LIMIT:
            reasons.append(f"{p.worker} used {p.cpu_share_max:.0%} of its CPU core")
        if p.loop_lag_max_s > LOOP_LAG_LIMIT_S:
            reasons.append(f"{p.worker}'s event loop ran {p.loop_lag_max_s * 1000:.0f} ms late")
    return reasons


def gated(verdict: Verdict, window: GeneratorWindow, bound_s: float | None) -> Verdict:
    """``verdict``, or undetermined naming the load generator when it was behind in ``window``.

    A pass is not kept either: the load the scenario offers was not the load sent.
    """
    reasons = behind_reasons(window, bound_s)
    evidence = {**verdict.evidence, "generator": window.as_json()}
    if not reasons:
        return replace(verdict, evidence=evidence)
    span = f"{window.start:.1f}-{window.end:.1f} s"
    reason = (
        f"the load generator fell behind in {span}: {'; '.join(reasons)}; "
        f"what this run measured is the generator, not the system "
        f"(it would have been {verdict.outcome}). To decide it: {WHAT_WOULD_DECIDE}"
    )
    return Verdict(
        expectation=verdict.expectation,
        outcome="undetermined",
        observed=verdict.observed,
        reason=reason,
        evidence=evidence,
    )
