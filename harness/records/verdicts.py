"""A verdict: what an expectation asked, what the run showed, and whether that decides it.

Every verdict is ``pass``, ``fail`` or ``undetermined``; an undetermined one says why (too few
samples, a fault never applied, no orders, a window too short...) and so what more data would
decide it.  ``evidence`` holds what the decision rests on: the samples, the window in run
seconds, the estimate and its interval, the baseline's, the fault as applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pydantic

__all__ = ["OUTCOMES", "Outcome", "Verdict", "outcome_of", "overall", "verdict_fields"]

Outcome = Literal["pass", "fail", "undetermined"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "undetermined")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    # summary.json's verdicts are read back through this record (harness.records.summary)
    __pydantic_config__: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict(extra="forbid")

    # Each field's one-line description is summary.json's reference (docs/hooks/summary_reference.py).
    expectation: str = field(metadata={"doc": "the expectation as written"})
    outcome: Outcome = field(metadata={"doc": "pass, fail or undetermined"})
    observed: str = field(metadata={"doc": "what the run showed"})
    reason: str | None = field(default=None, metadata={"doc": "why it is undetermined, else null"})
    evidence: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "doc": "what the decision rests on: the window in run seconds, the estimate {value, low, "
            "high, n}, the baseline's, the fault as applied, the recovery, the orders"
        },
    )

    @property
    def passed(self) -> bool:
        """true only for pass (in the JSON after ``outcome``)"""
        return self.outcome == "pass"

    def as_json(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "outcome": self.outcome,
            "passed": self.passed,
            "observed": self.observed,
            "reason": self.reason,
            "evidence": self.evidence,
        }

    @classmethod
    def undetermined(cls, expectation: str, reason: str, observed: str = "", **evidence: Any) -> Verdict:
        return cls(
            expectation=expectation, outcome="undetermined", observed=observed or "undetermined",
            reason=reason, evidence=evidence,
        )  # fmt: skip


def verdict_fields(obj: Any) -> Any:
    """A verdict of a file as the :class:`Verdict` record takes it: its outcome (from
    ``passed`` in files from before outcomes), without the derived ``passed``; anything but an
    object as it is, for the record's validation to refuse."""
    if not isinstance(obj, dict):
        return obj
    fields = {k: v for k, v in obj.items() if k != "passed"}
    return fields if "outcome" in obj else {**fields, "outcome": outcome_of(obj)}


def outcome_of(verdict: Mapping[str, Any]) -> Outcome:
    """A verdict's outcome as summary.json has it (files from before outcomes: from ``passed``)."""
    outcome = verdict.get("outcome")
    if outcome in OUTCOMES:
        return outcome  # type: ignore[no-any-return]
    return "pass" if verdict.get("passed") else "fail"


def overall(verdicts: Iterable[Verdict]) -> Outcome:
    """A run's outcome: fail if a verdict failed, else undetermined if one was, else pass."""
    outcomes = {v.outcome for v in verdicts}
    return "fail" if "fail" in outcomes else "undetermined" if "undetermined" in outcomes else "pass"
