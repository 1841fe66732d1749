"""What the analysis reads of a run: its requests, its faults as applied, its ledgers.

Plain data, times in seconds since the run's t0, so everything downstream is a pure function
tested on made-up runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.analysis.recovery import RecoveryQuestion
from harness.records.generator import GeneratorSample
from harness.records.schema import AttemptTimeline, RequestRecord
from harness.records.summary import ChaosWindow, LostWorker
from model.scenario import Scenario

__all__ = ["FaultWindow", "Row", "RunInputs"]


@dataclass(frozen=True)
class Row:
    """One request record as the analysis sees it: times are seconds since the run's t0."""

    intended: float
    end: float
    lane: str
    kind: str  # checkout | fulfillment | dropped
    code: int
    attempt: int
    order_id: str
    start: float | None = None  # when this attempt was sent (None: dropped, or not recorded)

    @property
    def ok(self) -> bool:
        return 200 <= self.code <= 299

    @property
    def latency(self) -> float:
        return self.end - self.intended

    @classmethod
    def from_record(cls, rec: RequestRecord, t0: float) -> Row:
        return cls(
            rec.intended_start - t0,
            rec.end - t0,
            rec.lane,
            rec.kind,
            rec.status,
            rec.attempt,
            rec.order_id,
            None if rec.start is None else rec.start - t0,
        )


@dataclass(frozen=True, kw_only=True)
class FaultWindow:
    name: str
    dependency: str
    lanes: tuple[str, ...]
    type: str
    attributes: dict[str, float]
    start: float  # seconds since t0, as applied (planned if it never was)
    end: float  # its removal acknowledged (asked for, or planned, if it was not)
    applied: bool = True
    removed: bool = True

    def record(self) -> ChaosWindow:
        """The window as ``summary.json``'s ``chaos`` holds it."""
        return ChaosWindow(
            name=self.name,
            dependency=self.dependency,
            lanes=self.lanes,
            type=self.type,
            attributes=self.attributes,
            start_s=round(self.start, 2),
            end_s=round(self.end, 2),
            applied=self.applied,
            removed=self.removed,
        )

    def as_json(self) -> dict[str, Any]:
        return self.record().to_json()


@dataclass(frozen=True, kw_only=True)
class RunInputs:
    scenario: Scenario
    rows: tuple[Row, ...]
    faults: tuple[FaultWindow, ...]
    load_end: float  # seconds since t0 when the load stopped
    # async order ledger after the drain: order id -> status ("missing" when unknown)
    async_statuses: dict[str, str] = field(default_factory=dict)
    # lane -> dependency -> order id -> times its side effect was applied (the services' ledgers)
    side_effects: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    # lane -> (downstream attempts, order requests) during the run
    attempts: dict[str, tuple[float, float]] = field(default_factory=dict)
    # fault name -> seconds after its end until every order accepted before then was finished
    drains: dict[str, float | None] = field(default_factory=dict)
    # The user stopped the wait for the drain: an order not finished yet is in flight, not lost.
    drain_cut_short: bool = False
    # attempts that went out per lane and dependency through the run; times in run seconds
    attempt_timeline: AttemptTimeline | None = None
    # the load generator's health samples (generator.jsonl), their t in run seconds
    generator: tuple[GeneratorSample, ...] = ()
    # generator workers lost mid-run (harness.analysis.lost_workers), decided from the run's files
    lost_workers: tuple[LostWorker, ...] = ()

    @property
    def pre_fault_window(self) -> tuple[float, float]:
        """The baseline before any fault was applied: the recovery detector's pre-trigger window."""
        b0, b1 = self.scenario.baseline_window()
        first = min((f.start for f in self.faults), default=b1)
        return b0, min(b1, first)

    def recovery_question(self, *, lane: str, trigger: FaultWindow, observe_s: float) -> RecoveryQuestion:
        """Did ``lane`` recover within ``observe_s`` after ``trigger`` (and did it dip), against
        its success rate in the baseline before any fault was applied."""
        scenario = self.scenario
        return RecoveryQuestion(
            rows=self.rows,
            lane=lane,
            trigger=trigger,
            pre_window=self.pre_fault_window,
            settings=scenario.metastability,
            observe_s=observe_s,
            load_end=min(self.load_end, scenario.duration_s),
            last_attempt=scenario.load.impatient.retries,
            resolution_s=scenario.time_scale,
        )
