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

The same statistics tell whether the trigger *dipped* the lane at all (:func:`lane_dip`): a
``smoothing``-long window below the bar at any time from the trigger's application to the end
of the observation window.  A lane that never dipped was stable under that trigger.

A "second" here is ``resolution_s`` long: 1 s, or the time scale of a time-scaled run
(harness.config.timescale), so that run is judged at the same resolution in its own time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from harness.analysis.estimates import proportion_interval
from harness.analysis.verdicts import Outcome
from model.scenario import Metastability

__all__ = [
    "ArrivalOutcomes",
    "Dip",
    "Recovery",
    "RecoveryEvidence",
    "RecoveryOutcome",
    "arrival_outcomes",
    "lane_dip",
    "lane_recovery",
    "offered_starts",
    "recovery_verdict",
    "shoppers_failed",
]

RecoveryOutcome = Literal["recovered", "metastable", "not_recovered", "undetermined"]


class RequestRecord(Protocol):
    """One request of the log, as ``harness.analysis.evaluate.Row`` has it (seconds since t0)."""

    @property
    def intended(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def lane(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def code(self) -> int: ...
    @property
    def attempt(self) -> int: ...


class AppliedFault(Protocol):
    """A fault as it was applied (``harness.analysis.evaluate.FaultWindow``)."""

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

    def as_json(self) -> dict[str, Any]:
        def r(x: float | None, n: int = 3) -> float | None:
            return None if x is None else round(x, n)

        return {
            "success": self.success,
            "pre_window_s": [round(v, 2) for v in self.pre_window_s],
            "pre_arrivals": self.pre_arrivals,
            "pre_successes": self.pre_successes,
            "pre_rate": r(self.pre_rate, 4),
            "pre_rate_ci95": [round(v, 4) for v in self.pre_rate_ci95] if self.pre_rate_ci95 else None,
            "fraction": self.fraction,
            "threshold": r(self.threshold, 4),
            "smoothing_s": self.smoothing_s,
            "resolution_s": self.resolution_s,
            "trigger_end_s": round(self.trigger_end_s, 2),
            "observation_s": round(self.observation_s, 1),
            "offered_before_rps": r(self.offered_before_rps),
            "offered_after_rps": r(self.offered_after_rps),
            "retries_before": self.retries_before,
            "retries_after": self.retries_after,
            "fulfilment_deadline_s": r(self.fulfilment_deadline_s),
            "offered": list(self.offered),
            "succeeded": list(self.succeeded),
            "window_rates": [r(v) for v in self.window_rates],
            "oldest_unfulfilled_s": [round(v, 1) for v in self.oldest_unfulfilled_s],
        }


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


@dataclass
class _Journey:
    """One arrival and every request it made (its attempts, its order's fulfilment)."""

    intended: float
    rows: list[RequestRecord] = field(default_factory=list)

    @property
    def offered(self) -> bool:
        return any(r.attempt == 0 and r.kind in ("checkout", "dropped") for r in self.rows)

    @property
    def retries(self) -> int:
        return sum(1 for r in self.rows if r.kind == "checkout" and r.attempt > 0)

    def checkout_outcome(self, last_attempt: int) -> bool | None:
        """True: answered 2xx; False: dropped, refused, or its last attempt timed out; None:
        still waiting when the records end."""
        checkouts = [r for r in self.rows if r.kind == "checkout"]
        if any(200 <= r.code <= 299 for r in checkouts):
            return True
        if any(r.kind == "dropped" for r in self.rows):
            return False
        # an answer, even an error, ends the journey; so does a timed-out last attempt
        if any(r.code != 0 or r.attempt >= last_attempt for r in checkouts):
            return False
        return None

    def fulfilment(self) -> RequestRecord | None:
        return next((r for r in self.rows if r.kind == "fulfillment"), None)


def _journeys(rows: Iterable[RequestRecord], lane: str) -> list[_Journey]:
    by_start: dict[float, _Journey] = {}
    for r in rows:
        if r.lane == lane:
            key = round(r.intended, 4)  # every row of a journey carries its intended start
            by_start.setdefault(key, _Journey(key)).rows.append(r)
    return sorted((j for j in by_start.values() if j.offered), key=lambda j: j.intended)


def offered_starts(rows: Iterable[RequestRecord], lane: str) -> list[float]:
    """The intended starts of the lane's offered arrivals (first attempts, dropped ones too),
    in order; an impatient shopper's retry is not one."""
    return [j.intended for j in _journeys(rows, lane)]


def _oldest_unfulfilled(journeys: Sequence[_Journey], at: float) -> float:
    """Age at ``at`` of the oldest accepted order whose fulfilment had not been seen yet."""
    for j in journeys:  # sorted by intended start: the first pending one is the oldest
        if j.intended > at:
            break
        if not any(r.kind == "checkout" and r.code == 202 and r.end <= at for r in j.rows):
            continue
        done = j.fulfilment()
        if done is None or done.end > at:
            return at - j.intended
    return 0.0


@dataclass(frozen=True, kw_only=True)
class ArrivalOutcomes:
    """A lane's offered arrivals and the detector's success rule for them.

    An arrival succeeded when its shopper got what they came for in the end, retries
    included: a 200 on the sync lane; on the async lane an order fulfilled within
    ``deadline_s`` of its arrival (the slowest fulfilment seen before the trigger).
    """

    journeys: tuple[_Journey, ...]
    last_attempt: int
    deadline_s: float | None  # async: the slowest fulfilment before the trigger
    records_end: float  # records end no earlier than the last one written

    def outcome(self, j: _Journey) -> bool | None:
        """True: succeeded; False: failed; None: not known when the records end."""
        answered = j.checkout_outcome(self.last_attempt)
        if self.deadline_s is None or answered is not True:
            return answered
        done = j.fulfilment()
        if done is not None:
            return done.code == 200 and done.end - j.intended <= self.deadline_s
        return False if j.intended + self.deadline_s < self.records_end else None

    def success(self, trigger: str) -> str:
        """What counted as a success, in words."""
        if self.deadline_s is None:
            return "checkout answered 200, retries included"
        return f"order fulfilled within {self.deadline_s:.1f} s of arrival (the slowest before {trigger})"


def arrival_outcomes(
    rows: Sequence[RequestRecord],
    lane: str,
    *,
    last_attempt: int,
    pre_window: tuple[float, float],
    trigger_start: float,
) -> ArrivalOutcomes | None:
    """The lane's arrivals under the detector's success rule; None when the rule has no bar
    (an async lane with no order fulfilled in ``pre_window`` before ``trigger_start``)."""
    journeys = _journeys(rows, lane)
    deadline: float | None = None
    if lane == "async":
        p0, p1 = pre_window
        seen = [
            f.end - j.intended
            for j in journeys
            if p0 <= j.intended < p1
            and (f := j.fulfilment()) is not None
            and f.code == 200
            and f.end < trigger_start
        ]
        if not seen:
            return None
        deadline = max(seen)
    return ArrivalOutcomes(
        journeys=tuple(journeys),
        last_attempt=last_attempt,
        deadline_s=deadline,
        records_end=max((r.end for r in rows), default=0.0),
    )


@dataclass(frozen=True, kw_only=True)
class _Baseline:
    """The pre-trigger success rate the detector compares with, and the evidence so far."""

    arrivals: ArrivalOutcomes
    evidence: RecoveryEvidence
    n: int
    k: int

    @property
    def bar(self) -> float:
        return self.evidence.fraction * self.k / self.n


def _baseline(
    rows: Sequence[RequestRecord],
    lane: str,
    trigger: AppliedFault,
    *,
    pre_window: tuple[float, float],
    settings: Metastability,
    last_attempt: int,
    resolution_s: float,
) -> _Baseline | tuple[str, RecoveryEvidence | None]:
    """The baseline, or why there is none to compare with (and what evidence there is)."""
    name = trigger.name
    arrivals = arrival_outcomes(
        rows, lane, last_attempt=last_attempt, pre_window=pre_window, trigger_start=trigger.start
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
    return _Baseline(arrivals=arrivals, evidence=evidence, n=n_pre, k=k_pre)


@dataclass(frozen=True, kw_only=True)
class _Bins:
    """Offered arrivals and successes per bin from a start, and how far they could be judged."""

    offered: tuple[int, ...]
    succeeded: tuple[int, ...]
    retries: int
    judged_s: float
    cut: str  # why the bins end where they do


def _bins(arrivals: ArrivalOutcomes, start: float, horizon: float, cut: str, r: float) -> _Bins:
    """Per bin of ``r`` s from ``start``, until ``horizon`` s later or an outcome is not known
    yet (the records ended before its answer could come: not a failure)."""
    offered: list[int] = []
    succeeded: list[int] = []
    retries = 0
    for j in arrivals.journeys:
        if j.intended < start:
            continue
        second = int((j.intended - start) / r)
        if second * r >= horizon:
            break
        result = arrivals.outcome(j)
        if result is None:
            horizon, cut = second * r, "outcomes after it are not known yet when the records end"
            break
        while len(offered) <= second:
            offered.append(0)
            succeeded.append(0)
        offered[second] += 1
        succeeded[second] += int(result)
        retries += j.retries
    seconds = max(0, math.floor(horizon / r + 1e-9))  # bins judged
    return _Bins(
        offered=tuple((offered + [0] * seconds)[:seconds]),
        succeeded=tuple((succeeded + [0] * seconds)[:seconds]),
        retries=retries,
        judged_s=round(seconds * r, 6),
        cut=cut,
    )


def _window_rates(bins: _Bins, w: int) -> list[float | None]:
    """The success rate of every ``w``-bin window (None where it holds no arrival)."""
    rates: list[float | None] = []
    for t in range(max(0, len(bins.offered) - w + 1)):
        n = sum(bins.offered[t : t + w])
        rates.append(sum(bins.succeeded[t : t + w]) / n if n else None)
    return rates


def lane_recovery(
    rows: Sequence[RequestRecord],
    lane: str,
    trigger: AppliedFault,
    *,
    pre_window: tuple[float, float],
    settings: Metastability,
    observe_s: float,
    load_end: float,
    last_attempt: int,
    resolution_s: float = 1.0,
) -> Recovery:
    """Whether ``lane`` recovered within ``observe_s`` after ``trigger`` was removed.

    ``pre_window``: arrivals that give the pre-trigger success rate (before any fault);
    ``load_end``: when the scenario's arrivals stopped; ``last_attempt``: the impatient
    shopper's last attempt number (0 when shoppers do not retry); ``resolution_s``: the
    length of a bin (1 s, or the run's time scale).
    """
    name = trigger.name

    def undetermined(reason: str, evidence: RecoveryEvidence | None = None) -> Recovery:
        return Recovery(lane=lane, trigger=name, outcome="undetermined", reason=reason, evidence=evidence)

    if not trigger.applied:
        return undetermined(f"fault {name} was never applied")
    if not trigger.removed:
        return undetermined(f"the removal of fault {name} was never acknowledged")
    found = _baseline(
        rows, lane, trigger, pre_window=pre_window, settings=settings,
        last_attempt=last_attempt, resolution_s=resolution_s,
    )  # fmt: skip
    if not isinstance(found, _Baseline):
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
    bins = _bins(found.arrivals, end, horizon, cut, r)
    offered, succeeded, judged_s, cut = list(bins.offered), list(bins.succeeded), bins.judged_s, bins.cut
    seconds = len(offered)
    rates = _window_rates(bins, round(evidence.smoothing_s / r))
    evidence = replace(
        evidence,
        observation_s=judged_s,
        offered_after_rps=sum(offered) / judged_s if seconds else None,
        retries_after=bins.retries,
        offered=tuple(offered),
        succeeded=tuple(succeeded),
        window_rates=tuple(rates),
        oldest_unfulfilled_s=(
            tuple(_oldest_unfulfilled(journeys, end + s * r) for s in range(seconds + 1))
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


@dataclass(frozen=True, kw_only=True)
class Dip:
    """Did the trigger push the lane below the detector's bar?  ``dipped`` None: can not tell."""

    lane: str
    trigger: str
    dipped: bool | None
    reason: str | None = None  # why it can not be told
    at_s: float | None = None  # since t0: the start of the first smoothing window below the bar
    lowest: float | None = None  # the lowest window success rate seen
    bar: float | None = None  # fraction x the pre-trigger success rate


def lane_dip(
    rows: Sequence[RequestRecord],
    lane: str,
    trigger: AppliedFault,
    *,
    pre_window: tuple[float, float],
    settings: Metastability,
    observe_s: float,
    load_end: float,
    last_attempt: int,
    resolution_s: float = 1.0,
) -> Dip:
    """Whether ``trigger`` pushed ``lane`` below the recovery detector's bar at any time from
    its application to the end of the observation window (``observe_s`` after its removal).

    The detector's own statistics: the same success rule and pre-trigger rate, the same bins
    and ``smoothing`` windows, the same bar (``fraction`` x the pre-trigger rate); a window
    below it is a dip. The arguments are :func:`lane_recovery`'s.
    """
    name = trigger.name

    def unknown(reason: str) -> Dip:
        return Dip(lane=lane, trigger=name, dipped=None, reason=reason)

    if not trigger.applied:
        return unknown(f"fault {name} was never applied")
    found = _baseline(
        rows, lane, trigger, pre_window=pre_window, settings=settings,
        last_attempt=last_attempt, resolution_s=resolution_s,
    )  # fmt: skip
    if not isinstance(found, _Baseline):
        return unknown(found[0])
    r, start = resolution_s, trigger.start
    window_end = trigger.end + observe_s
    cut = "the observation window ended" if window_end <= load_end else "the load ended"
    bins = _bins(found.arrivals, start, min(window_end, load_end) - start, cut, r)
    rates = _window_rates(bins, round(found.evidence.smoothing_s / r))
    seen = [rate for rate in rates if rate is not None]
    lowest = min(seen, default=None)
    below = [t for t, rate in enumerate(rates) if rate is not None and rate < found.bar]
    if below:
        at = round(start + below[0] * r, 6)
        return Dip(lane=lane, trigger=name, dipped=True, at_s=at, lowest=lowest, bar=found.bar)
    applied_bins = max(1, math.ceil((trigger.end - start) / r - 1e-9))
    if sum(bins.offered[:applied_bins]) == 0:
        return unknown(f"no {lane} arrivals were offered while {name} was applied")
    # The detector judges whole bins: a removal acknowledged late leaves a part bin at the end.
    needed = round(math.floor((window_end - start) / r + 1e-9) * r, 6)
    if bins.judged_s < needed - 1e-9:
        return unknown(
            f"no dip in the {bins.judged_s:g} s from the application of {name} that could be judged "
            f"({bins.cut}); {needed:g} s needed"
        )
    if not seen:
        return unknown(
            f"no {found.evidence.smoothing_s:g} s window from the application of {name} held arrivals"
        )
    return Dip(lane=lane, trigger=name, dipped=False, lowest=lowest, bar=found.bar)


def shoppers_failed(
    rows: Sequence[RequestRecord], lane: str, *, last_attempt: int, load_end: float
) -> tuple[int, int]:
    """``(failed, offered)``: the lane's offered arrivals intended before ``load_end``, and
    those whose shopper did not get what they came for in the end, impatient retries
    included: a 200 on the sync lane; on the async lane, the order fulfilled at all while the
    shopper still polled (a slow fulfilment is the recovery detector's concern, not a failed
    shopper). One whose outcome the records do not hold yet is not counted as failed.
    """
    arrivals = ArrivalOutcomes(
        journeys=tuple(_journeys(rows, lane)),
        last_attempt=last_attempt,
        deadline_s=math.inf if lane == "async" else None,
        records_end=max((r.end for r in rows), default=0.0),
    )
    offered = [j for j in arrivals.journeys if j.intended < load_end]
    return sum(1 for j in offered if arrivals.outcome(j) is False), len(offered)


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
