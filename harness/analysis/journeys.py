"""A lane's journeys: each offered arrival with every request it made, and whether its shopper
got what they came for, counted per bin of time.

An offered arrival is one of the scenario's own arrivals (a first attempt, a dropped one
too); an impatient shopper's retry is not new offered load, it belongs to its arrival's
journey.  The recovery and dip detectors (:mod:`harness.analysis.recovery`,
:mod:`harness.analysis.dip`) and the ladder count these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "ArrivalOutcomes",
    "Bins",
    "Journey",
    "RequestRecord",
    "arrival_outcomes",
    "count_bins",
    "lane_journeys",
    "offered_starts",
    "oldest_unfulfilled",
    "shoppers_failed",
    "window_rates",
]


class RequestRecord(Protocol):
    """One request of the log, as ``harness.analysis.inputs.Row`` has it (seconds since t0)."""

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


@dataclass
class Journey:
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


def lane_journeys(rows: Iterable[RequestRecord], lane: str) -> list[Journey]:
    by_start: dict[float, Journey] = {}
    for r in rows:
        if r.lane == lane:
            key = round(r.intended, 4)  # every row of a journey carries its intended start
            by_start.setdefault(key, Journey(key)).rows.append(r)
    return sorted((j for j in by_start.values() if j.offered), key=lambda j: j.intended)


def offered_starts(rows: Iterable[RequestRecord], lane: str) -> list[float]:
    """The intended starts of the lane's offered arrivals (first attempts, dropped ones too),
    in order; an impatient shopper's retry is not one."""
    return [j.intended for j in lane_journeys(rows, lane)]


def oldest_unfulfilled(journeys: Sequence[Journey], at: float) -> float:
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

    journeys: tuple[Journey, ...]
    last_attempt: int
    deadline_s: float | None  # async: the slowest fulfilment before the trigger
    records_end: float  # records end no earlier than the last one written

    def outcome(self, j: Journey) -> bool | None:
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
    journeys = lane_journeys(rows, lane)
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
class Bins:
    """Offered arrivals and successes per bin from a start, and how far they could be judged."""

    offered: tuple[int, ...]
    succeeded: tuple[int, ...]
    retries: int
    judged_s: float
    cut: str  # why the bins end where they do


def count_bins(arrivals: ArrivalOutcomes, start: float, horizon: float, cut: str, r: float) -> Bins:
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
    return Bins(
        offered=tuple((offered + [0] * seconds)[:seconds]),
        succeeded=tuple((succeeded + [0] * seconds)[:seconds]),
        retries=retries,
        judged_s=round(seconds * r, 6),
        cut=cut,
    )


def window_rates(bins: Bins, w: int) -> list[float | None]:
    """The success rate of every ``w``-bin window (None where it holds no arrival)."""
    rates: list[float | None] = []
    for t in range(max(0, len(bins.offered) - w + 1)):
        n = sum(bins.offered[t : t + w])
        rates.append(sum(bins.succeeded[t : t + w]) / n if n else None)
    return rates


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
        journeys=tuple(lane_journeys(rows, lane)),
        last_attempt=last_attempt,
        deadline_s=math.inf if lane == "async" else None,
        records_end=max((r.end for r in rows), default=0.0),
    )
    offered = [j for j in arrivals.journeys if j.intended < load_end]
    return sum(1 for j in offered if arrivals.outcome(j) is False), len(offered)
