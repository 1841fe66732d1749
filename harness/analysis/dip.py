"""Did the trigger push a lane below the recovery detector's bar at all?

The recovery detector's own statistics (:mod:`harness.analysis.recovery`): a
``smoothing``-long window below the bar at any time from the trigger's application to the end
of the observation window is a dip.  A lane that never dipped was stable under that trigger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.analysis.journeys import count_bins, window_rates
from harness.analysis.recovery import Baseline, RecoveryQuestion, pre_trigger_baseline

__all__ = ["Dip", "lane_dip"]


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


def lane_dip(question: RecoveryQuestion) -> Dip:
    """Whether the question's trigger pushed its lane below the recovery detector's bar at any
    time from its application to the end of the observation window (``observe_s`` after its
    removal).

    The detector's own statistics: the same success rule and pre-trigger rate, the same bins
    and ``smoothing`` windows, the same bar (``fraction`` x the pre-trigger rate); a window
    below it is a dip.
    """
    lane, trigger, resolution_s = question.lane, question.trigger, question.resolution_s
    observe_s, load_end = question.observe_s, question.load_end
    name = trigger.name

    def unknown(reason: str) -> Dip:
        return Dip(lane=lane, trigger=name, dipped=None, reason=reason)

    if not trigger.applied:
        return unknown(f"fault {name} was never applied")
    found = pre_trigger_baseline(question)
    if not isinstance(found, Baseline):
        return unknown(found[0])
    r, start = resolution_s, trigger.start
    window_end = trigger.end + observe_s
    cut = "the observation window ended" if window_end <= load_end else "the load ended"
    bins = count_bins(found.arrivals, start, min(window_end, load_end) - start, cut, r)
    rates = window_rates(bins, round(found.evidence.smoothing_s / r))
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
