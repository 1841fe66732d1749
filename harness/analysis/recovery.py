"""Did a lane recover after its trigger was removed?  Measured per offered arrival.

A lane's success rate is counted per *offered arrival*: the scenario's own arrivals (first
attempts), by the second of their intended start.  An arrival succeeded when its shopper got
what they came for eventually, retries included: a 200 on the sync lane; on the async lane an
order fulfilled within the slowest fulfilment seen before the trigger (so a lane whose 202s are
fine while its orders wait in a backlog has not recovered).  A flush of queued requests after
the fault can not fake a recovery, because those requests belong to the seconds in which they
arrived; an impatient shopper's retry is not new offered load.

The lane recovered at the first second T after the trigger's (acknowledged) removal from which
every ``smoothing``-long window, up to the end of the observation window, has a success rate at
or above ``fraction`` of the pre-trigger rate, T itself included (the first window that holds
may begin with a failing second).  T has 1 s resolution and no floor: a lane that
never faltered recovered at 0 s.  It is *metastable* only when the trigger was removed, the
offered arrival rate afterwards was at most its pre-trigger level (within counting noise:
three standard deviations of a Poisson count), and every window stayed below the bar.

The same statistics tell whether the trigger *dipped* the lane at all
(:func:`harness.analysis.dip.lane_dip`); both detectors answer one :class:`RecoveryQuestion`.

A "second" here is ``resolution_s`` long: 1 s, or the time scale of a time-scaled run
(harness.config.timescale), so that run is judged at the same resolution in its own time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from harness.analysis.estimates import proportion_interval
from harness.analysis.journeys import (
    ArrivalOutcomes,
    RequestRecord,
    arrival_outcomes,
    count_bins,
    oldest_unfulfilled,
    window_rates,
)
from harness.records.summary import RecoveryFigures
from harness.records.verdicts import Outcome
from model.scenario import Metastability

__all__ = [
    "AppliedFault",
    "Baseline",
    "Recovery",
    "RecoveryEvidence",
    "RecoveryOutcome",
    "RecoveryQuestion",
    "lane_recovery",
    "pre_trigger_baseline",
    "recovery_verdict",
]

RecoveryOutcome = Literal["recovered", "metastable", "not_recovered", "undetermined"]


class AppliedFault(Protocol):
    """A fault as it was applied (``harness.analysis.inputs.FaultWindow``)."""

    @property
    def name(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def applied(self) -> bool: ...
    @property
    def removed(self) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class RecoveryQuestion:
    """Did ``lane`` recover within ``observe_s`` after ``trigger`` was removed, and did the
    trigger dip it: everything the recovery and dip detectors take, built once per lane.

    ``rows``: the request log (seconds since t0); ``pre_window``: arrivals that give the
    pre-trigger success rate (before any fault); ``settings``: the scenario's ``fraction`` and
    ``smoothing``; ``load_end``: when the scenario's arrivals stopped; ``last_attempt``: the
    impatient shopper's last attempt number (0 when shoppers do not retry); ``resolution_s``:
    the length of a bin (1 s, or the run's time scale).
    """

    rows: Sequence[RequestRecord]
    lane: str
    trigger: AppliedFault
    pre_window: tuple[float, float]
    settings: Metastability
    observe_s: float
    load_end: float
    last_attempt: int
    resolution_s: float = 1.0


@dataclass(frozen=True, kw_only=True)
class RecoveryEvidence:
    """What a recovery outcome rests on; seconds are since the run's t0 unless said."""

    success: str  # what counted as a success for an arrival
    pre_window_s: tuple[float, float]
    pre_arrivals: int = 0
    pre_successes: int = 0
    pre_rate_ci95: tuple[float, float] | None = None
    fraction: float
    smoothing_s: float
    resolution_s: float = 1.0  # the length of a "second" (a bin): the run's time scale
    trigger_end_s: float
    observation_s: float = 0.0  # how long after the trigger's removal the outcome was judged
    offered_before_rps: float | None = None
    offered_after_rps: float | None = None
    retries_before: int = 0
    retries_after: int = 0
    fulfilment_deadline_s: float | None = None  # async: the slowest fulfilment before the trigger
    # per second after the trigger's removal: offered arrivals, successes, window success rates
    offered: tuple[int, ...] = ()
    succeeded: tuple[int, ...] = ()
    window_rates: tuple[float | None, ...] = ()
    oldest_unfulfilled_s: tuple[float, ...] = ()  # async: at each second after the removal

    @property
    def pre_rate(self) -> float | None:
        return self.pre_successes / self.pre_arrivals if self.pre_arrivals else None

    @property
    def threshold(self) -> float | None:
        rate = self.pre_rate
        return None if rate is None else self.fraction * rate

    def record(self) -> RecoveryFigures:
        """The evidence as ``summary.json`` holds it, rounded."""

        def r(x: float | None, n: int = 3) -> float | None:
            return None if x is None else round(x, n)

        p0, p1 = self.pre_window_s
        ci = self.pre_rate_ci95
        return RecoveryFigures(
            success=self.success,
            pre_window_s=(round(p0, 2), round(p1, 2)),
            pre_arrivals=self.pre_arrivals,
            pre_successes=self.pre_successes,
            pre_rate=r(self.pre_rate, 4),
            pre_rate_ci95=(round(ci[0], 4), round(ci[1], 4)) if ci else None,
            fraction=self.fraction,
            threshold=r(self.threshold, 4),
            smoothing_s=self.smoothing_s,
            resolution_s=self.resolution_s,
            trigger_end_s=round(self.trigger_end_s, 2),
            observation_s=round(self.observation_s, 1),
            offered_before_rps=r(self.offered_before_rps),
            offered_after_rps=r(self.offered_after_rps),
            retries_before=self.retries_before,
            retries_after=self.retries_after,
            fulfilment_deadline_s=r(self.fulfilment_deadline_s),
            offered=self.offered,
            succeeded=self.succeeded,
            window_rates=tuple(r(v) for v in self.window_rates),
            oldest_unfulfilled_s=tuple(round(v, 1) for v in self.oldest_unfulfilled_s),
        )

    def as_json(self) -> dict[str, Any]:
        return self.record().to_json()


@dataclass(frozen=True, kw_only=True)
class Recovery:
    lane: str
    trigger: str
    outcome: RecoveryOutcome
    seconds: float | None = None  # time to recover after the removal, in whole bins
    reason: str | None = None  # why undetermined or not recovered
    evidence: RecoveryEvidence | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "recovery_s": self.seconds,
            "reason": self.reason,
            "evidence": self.evidence.as_json() if self.evidence else None,
        }


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """The pre-trigger success rate the detector compares with, and the evidence so far."""

    arrivals: ArrivalOutcomes
    evidence: RecoveryEvidence
    n: int
    k: int

    @property
    def bar(self) -> float:
        return self.evidence.fraction * self.k / self.n


def pre_trigger_baseline(question: RecoveryQuestion) -> Baseline | tuple[str, RecoveryEvidence | None]:
    """The baseline, or why there is none to compare with (and what evidence there is)."""
    lane, trigger, pre_window, settings = (
        question.lane,
        question.trigger,
        question.pre_window,
        question.settings,
    )
    resolution_s, name = question.resolution_s, question.trigger.name
    arrivals = arrival_outcomes(
        question.rows,
        lane,
        last_attempt=question.last_attempt,
        pre_window=pre_window,
        trigger_start=trigger.start,
    )
    if arrivals is None:
        return f"no async order was fulfilled before {name}: nothing to recover to", None
    p0, p1 = pre_window
    pre = [j for j in arrivals.journeys if p0 <= j.intended < p1]
    base = RecoveryEvidence(
        success=arrivals.success(name),
        pre_window_s=pre_window,
        fraction=settings.fraction,
        smoothing_s=round(max(1, math.ceil(settings.smoothing / resolution_s - 1e-9)) * resolution_s, 6),
        resolution_s=resolution_s,
        trigger_end_s=trigger.end,
        fulfilment_deadline_s=arrivals.deadline_s,
    )
    pre_outcomes = [arrivals.outcome(j) for j in pre]
    n_pre, k_pre = sum(1 for o in pre_outcomes if o is not None), sum(1 for o in pre_outcomes if o)
    ci = proportion_interval(k_pre, n_pre).interval if n_pre else (0.0, 1.0)
    pre_len = max(p1 - p0, 1e-9)
    evidence = replace(
        base, pre_arrivals=n_pre, pre_successes=k_pre, pre_rate_ci95=ci,
        offered_before_rps=n_pre / pre_len, retries_before=sum(j.retries for j in pre),
    )  # fmt: skip
    if n_pre == 0:
        return f"no arrivals before {name} to compare with", evidence
    if k_pre == 0:
        return f"no {lane} arrival succeeded before {name}: nothing to recover to", evidence
    if ci[0] < settings.fraction * k_pre / n_pre:
        return (
            f"the pre-trigger success rate is too uncertain to compare: {k_pre}/{n_pre}, 95% CI "
            f"{ci[0]:.2f}-{ci[1]:.2f} reaches below {settings.fraction:.0%} of it"
        ), evidence
    return Baseline(arrivals=arrivals, evidence=evidence, n=n_pre, k=k_pre)


def lane_recovery(question: RecoveryQuestion) -> Recovery:
    """Whether the question's lane recovered within ``observe_s`` after its trigger was removed."""
    lane, trigger, pre_window, settings = (
        question.lane,
        question.trigger,
        question.pre_window,
        question.settings,
    )
    observe_s, load_end, resolution_s = question.observe_s, question.load_end, question.resolution_s
    name = trigger.name

    def undetermined(reason: str, evidence: RecoveryEvidence | None = None) -> Recovery:
        return Recovery(lane=lane, trigger=name, outcome="undetermined", reason=reason, evidence=evidence)

    if not trigger.applied:
        return undetermined(f"fault {name} was never applied")
    if not trigger.removed:
        return undetermined(f"the removal of fault {name} was never acknowledged")
    found = pre_trigger_baseline(question)
    if not isinstance(found, Baseline):
        return undetermined(*found)
    evidence, n_pre, k_pre = found.evidence, found.n, found.k
    journeys = found.arrivals.journeys
    end = trigger.end
    p0, p1 = pre_window
    pre_len = max(p1 - p0, 1e-9)

    # Per bin ("second") after the removal, until the window ends or the load stops.
    r = resolution_s
    horizon = min(observe_s, load_end - end)
    cut = "the load ended"
    if observe_s <= load_end - end:
        cut = "the observation window ended"
    bins = count_bins(found.arrivals, end, horizon, cut, r)
    offered, succeeded, judged_s, cut = list(bins.offered), list(bins.succeeded), bins.judged_s, bins.cut
    seconds = len(offered)
    rates = window_rates(bins, round(evidence.smoothing_s / r))
    evidence = replace(
        evidence,
        observation_s=judged_s,
        offered_after_rps=sum(offered) / judged_s if seconds else None,
        retries_after=bins.retries,
        offered=tuple(offered),
        succeeded=tuple(succeeded),
        window_rates=tuple(rates),
        oldest_unfulfilled_s=(
            tuple(oldest_unfulfilled(journeys, end + s * r) for s in range(seconds + 1))
            if found.arrivals.deadline_s is not None
            else ()
        ),
    )
    if judged_s < observe_s - 1e-9:
        return undetermined(
            f"only {judged_s:g} s after {name} could be judged ({cut}); {observe_s:g} s needed", evidence
        )
    if all(rate is None for rate in rates):
        return undetermined(f"no arrivals were offered after {name}", evidence)
    bar = found.bar
    below = [t for t, rate in enumerate(rates) if rate is not None and rate < bar]
    recovered_at = below[-1] + 1 if below else 0
    # The first window that holds may start with a failing second or two: T is its first good one.
    while recovered_at < len(rates) and (
        offered[recovered_at] == 0 or succeeded[recovered_at] < bar * offered[recovered_at]
    ):
        recovered_at += 1
    if any(rate is not None for rate in rates[recovered_at:]):
        seconds_to_recover = round(recovered_at * r, 6)
        return Recovery(
            lane=lane, trigger=name, outcome="recovered", seconds=seconds_to_recover, evidence=evidence
        )
    after_n = sum(offered)
    expected = n_pre / pre_len * judged_s
    if after_n > expected + 3 * math.sqrt(expected):
        return Recovery(
            lane=lane, trigger=name, outcome="not_recovered", evidence=evidence,
            reason=(
                f"offered load rose after {name} ({after_n / judged_s:.2f}/s against "
                f"{n_pre / pre_len:.2f}/s before): not a metastable failure by definition"
            ),
        )  # fmt: skip
    if len(below) < sum(1 for rate in rates if rate is not None):
        return Recovery(
            lane=lane, trigger=name, outcome="not_recovered", evidence=evidence,
            reason=f"back above {settings.fraction:.0%} of its pre-trigger rate, then below it again",
        )  # fmt: skip
    return Recovery(
        lane=lane, trigger=name, outcome="metastable", evidence=evidence,
        reason=(
            f"below {settings.fraction:.0%} of its pre-trigger success rate ({k_pre}/{n_pre}) in every "
            f"{evidence.smoothing_s:g} s window for {judged_s:g} s after {name} was removed, with no more "
            "offered load"
        ),
    )  # fmt: skip


def recovery_verdict(result: Recovery, within: float, negated: bool) -> tuple[Outcome, str]:
    """``(pass|fail|undetermined, what was observed)`` for "LANE [does not] recover within D"."""
    ev = result.evidence
    if result.outcome == "undetermined":
        return "undetermined", f"can not tell: {result.reason}"
    assert ev is not None and ev.threshold is not None
    what = (
        f"success per offered arrival back to >= {ev.threshold:.2f} ({ev.fraction:.0%} of {ev.pre_rate:.2f})"
    )
    if result.outcome == "recovered" and result.seconds is not None:
        recovered = result.seconds <= within
        observed = f"{what} {round(result.seconds, 3):g} s after {result.trigger}, and stayed there"
    else:
        recovered = False
        observed = f"{result.outcome.replace('_', ' ')}: {result.reason}"
    return ("pass" if recovered != negated else "fail"), observed
