"""What a sweep's trial and cell say: stable, recovered, metastable, or undetermined.

Per trial and lane, from the run's ``summary["metastability"][lane]`` (harness.analysis.summary):

- ``stable``: the trigger did not push the lane below its bar (``dipped`` false) and it
  recovered;
- ``recovered``: it dipped and recovered after the trigger was removed;
- ``metastable``: the detector said metastable (below the bar for the whole window after the
  removal, with no more offered load than before);
- ``undetermined``, with the reason: the detector could not tell, the lane did not recover
  but the load rose (or it came back and fell again), ``dipped`` is unknown, or the reading is
  missing.

Per cell: the outcome counts over its counted trials, the share that tipped (metastable among
the determined trials), and the cell's outcome: the most frequent determined one, a tie going
to the worse, or undetermined (with the reasons) when no trial was determined.

>>> classify_lane({"outcome": "recovered", "dipped": True, "recovery_s": 4.0})
TrialOutcome(outcome='recovered', reason=None)
>>> cell = summarise_cell([TrialOutcome("metastable"), TrialOutcome("recovered"), TrialOutcome("metastable")])
>>> cell.outcome, cell.tipped_share
('metastable', 0.667)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DETERMINED",
    "OUTCOMES",
    "CellSummary",
    "TrialOutcome",
    "classify_lane",
    "summarise_cell",
]

Outcome = Literal["stable", "recovered", "metastable", "undetermined"]
# From best to worst: a tie between determined outcomes goes to the later one.
DETERMINED: tuple[Outcome, ...] = ("stable", "recovered", "metastable")
OUTCOMES: tuple[Outcome, ...] = (*DETERMINED, "undetermined")


@dataclass(frozen=True)
class TrialOutcome:
    outcome: Outcome
    reason: str | None = None


def classify_lane(reading: Mapping[str, Any] | None) -> TrialOutcome:
    """One trial's outcome for one lane, from ``summary["metastability"][lane]``."""
    if not isinstance(reading, Mapping) or "outcome" not in reading:
        return TrialOutcome("undetermined", "the run has no recovery reading for this lane")
    detector = reading["outcome"]
    why = reading.get("reason")
    if detector == "metastable":
        return TrialOutcome("metastable")
    if detector == "recovered":
        if "dipped" not in reading:
            return TrialOutcome(
                "undetermined", "the summary does not say whether the trigger pushed the lane below its bar"
            )
        dipped = reading["dipped"]
        if dipped is True:
            return TrialOutcome("recovered")
        if dipped is False:
            return TrialOutcome("stable")
        dip_why = reading.get("dip_reason") or "no reason given"
        return TrialOutcome("undetermined", f"recovered, but can not tell whether it dipped: {dip_why}")
    if detector == "not_recovered":
        return TrialOutcome("undetermined", f"not recovered, yet not metastable: {why or 'no reason given'}")
    if detector == "undetermined":
        return TrialOutcome(
            "undetermined", f"the recovery detector could not tell: {why or 'no reason given'}"
        )
    return TrialOutcome("undetermined", f"unknown recovery outcome {detector!r}")


@dataclass(frozen=True, kw_only=True)
class CellSummary:
    outcome: Outcome | Literal["not run"]
    trials: int
    outcomes: dict[str, int]
    tipped_share: float | None  # metastable / determined trials; None when none was determined
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "trials": self.trials,
            "outcomes": dict(self.outcomes),
            "tipped_share": self.tipped_share,
            "reasons": list(self.reasons),
        }


def summarise_cell(trials: Sequence[TrialOutcome]) -> CellSummary:
    """A cell's outcome from its counted trials' outcomes (one lane)."""
    counts: dict[str, int] = {o: sum(1 for t in trials if t.outcome == o) for o in OUTCOMES}
    reasons = tuple(dict.fromkeys(t.reason for t in trials if t.reason))
    if not trials:
        return CellSummary(outcome="not run", trials=0, outcomes=counts, tipped_share=None, reasons=())
    determined = sum(counts[o] for o in DETERMINED)
    if determined == 0:
        return CellSummary(
            outcome="undetermined", trials=len(trials), outcomes=counts, tipped_share=None, reasons=reasons
        )
    most = max(counts[o] for o in DETERMINED)
    worst = [o for o in DETERMINED if counts[o] == most][-1]
    return CellSummary(
        outcome=worst,
        trials=len(trials),
        outcomes=counts,
        tipped_share=round(counts["metastable"] / determined, 3),
        reasons=reasons,
    )
