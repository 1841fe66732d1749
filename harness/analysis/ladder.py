"""One rung of the retry-policy ladder: what a lane's retry policy did under its trigger.

For each lane with a trigger (the last fault on it, as the recovery detector takes it):
the lane's policy, the slow hop (the trigger's dependency), the amplification there (attempts
that went out per offered arrival, :mod:`harness.analysis.amplification`) during the trigger and over
the observation window after its removal, against the most the policy allows; the shoppers
who did not get what they came for over the whole run (the recovery detector's success rule,
impatient retries included); and the recovery outcome.  ``summary.ladder[lane]`` is
:meth:`Rung.record`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis.amplification import Bound, async_bound, policy_bound, window_amplification
from harness.analysis.journeys import offered_starts, shoppers_failed
from harness.analysis.recovery import RecoveryQuestion
from harness.records.schema import AttemptTimeline
from harness.records.summary import LadderAmplification, LadderRung
from model.scenario import Scenario

__all__ = [
    "ASYNC_POLICY",
    "LADDER_COLUMNS",
    "Rung",
    "ladder_cells",
    "ladder_table_html",
    "lane_policy",
    "rung",
]

ASYNC_POLICY = "async workers"


@dataclass(frozen=True, kw_only=True)
class Rung:
    lane: str
    policy: str
    slow_hop: str
    trigger: str
    during: float | None  # attempts at the slow hop per offered arrival while the trigger was on
    after: float | None  # ... over the observation window after its removal
    theory: Bound
    shoppers_failed: int
    shoppers: int
    recovery_s: float | None
    outcome: str
    notes: tuple[str, ...] = ()  # why a figure is missing

    def record(self) -> LadderRung:
        """The rung as ``summary.json``'s ``ladder`` holds it."""
        return LadderRung(
            policy=self.policy,
            slow_hop=self.slow_hop,
            amplification=LadderAmplification(during=self.during, after=self.after, theory=self.theory.value),
            shoppers_failed=self.shoppers_failed,
            shoppers=self.shoppers,
            recovery_s=self.recovery_s,
            outcome=self.outcome,
        )

    def as_json(self) -> dict[str, Any]:
        return self.record().to_json()

    def reading(self) -> str:
        """One line: the amplification during and after against its theory, shoppers failed."""

        def x(value: float | None) -> str:
            return "not known" if value is None else f"{value:.2f}"

        allows = (
            f"the policy allows at most {self.theory.value:g}: {self.theory.basis}"
            if self.theory.value is not None
            else f"no bound: {self.theory.basis}"
        )
        failed = f"{self.shoppers_failed} of {self.shoppers} shoppers failed"
        if self.shoppers:
            failed += f" ({self.shoppers_failed / self.shoppers:.0%})"
        line = (
            f"The {self.lane} lane ({self.policy}) made {x(self.during)} attempts at {self.slow_hop} per "
            f"offered arrival during {self.trigger} and {x(self.after)} after it ({allows}); {failed}; "
            f"{self.outcome.replace('_', ' ')}"
        )
        if self.recovery_s is not None:
            line += f" in {round(self.recovery_s, 3):g} s"
        return line + (f" ({'; '.join(self.notes)})." if self.notes else ".")


def lane_policy(scenario: Scenario, lane: str) -> str:
    """The lane's retry policy by name: ``sync.retry.policy`` (the seed's, by default)."""
    if lane != "sync":
        return ASYNC_POLICY
    return scenario.stack.sync.retry.policy


def _theory(scenario: Scenario, lane: str, hop: str, window_s: float, arrivals: int) -> Bound:
    stack = scenario.stack
    r = scenario.load.impatient.retries
    if lane != "sync":
        return async_bound(
            critical=hop in stack.critical,
            critical_attempts=stack.async_.critical_retry.attempts,
            worker_attempts=stack.async_.worker_retry.max_attempts,
            impatient_retries=r,
        )
    retry = stack.sync.retry
    budget, bucket, adaptive = retry.budget, retry.token_bucket, retry.adaptive
    return policy_bound(
        retry.policy,
        attempts=retry.attempts_allowed,
        impatient_retries=r,
        window_s=window_s,
        window_arrivals=arrivals,
        time_scale=scenario.time_scale,
        budget_ratio=budget.ratio,
        budget_min_retries_per_s=budget.min_retries_per_s,
        token_capacity=bucket.capacity,
        token_retry_cost=bucket.retry_cost,
        token_success_refund=bucket.success_refund,
        adaptive_k=adaptive.k,
        adaptive_window_s=adaptive.window_s,
    )


def rung(
    scenario: Scenario,
    question: RecoveryQuestion,
    *,
    slow_hop: str,
    timeline: AttemptTimeline | None,
    recovery_s: float | None,
    outcome: str,
) -> Rung:
    """The lane's rung under the question's trigger at ``slow_hop``, over the recovery
    detector's own observation window; ``timeline``'s times in run seconds."""
    rows, lane, trigger, load_end = question.rows, question.lane, question.trigger, question.load_end
    arrivals = offered_starts(rows, lane)
    notes: list[str] = []
    after_end = min(trigger.end + question.observe_s, load_end)
    windows = {"during": (trigger.start, trigger.end), "after": (trigger.end, after_end)}
    figures: dict[str, float | None] = {}
    counts = timeline.attempts.get(lane, {}).get(slow_hop) if timeline is not None else None
    for name, (start, end) in windows.items():
        if timeline is None or counts is None:
            figures[name] = None
            continue
        figures[name], why = window_amplification(arrivals, timeline.times, counts, start, end)
        if why:
            notes.append(f"{name}: {why}")
    if timeline is None:
        notes.append("the run kept no timeline of attempts per dependency")
    elif counts is None:
        notes.append(f"no {lane} attempts at {slow_hop} were counted")
    during_arrivals = sum(1 for t in arrivals if trigger.start <= t < trigger.end)
    failed, shoppers = shoppers_failed(rows, lane, last_attempt=question.last_attempt, load_end=load_end)
    return Rung(
        lane=lane,
        policy=lane_policy(scenario, lane),
        slow_hop=slow_hop,
        trigger=trigger.name,
        during=figures["during"],
        after=figures["after"],
        theory=_theory(scenario, lane, slow_hop, trigger.end - trigger.start, during_arrivals),
        shoppers_failed=failed,
        shoppers=shoppers,
        recovery_s=recovery_s,
        outcome=outcome,
        notes=tuple(notes),
    )


LADDER_COLUMNS = (
    "policy",
    "slow hop",
    "attempts per arrival during the trigger",
    "after it",
    "at most (theory)",
    "shoppers failed",
    "time to recover",
    "outcome",
)


def ladder_cells(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """One row of the ladder table from a ``summary["ladder"][lane]`` entry, as text."""

    def x(value: float | None) -> str:
        return "not known" if value is None else f"{value:.2f}"

    amp = entry["amplification"]
    shoppers, failed = entry["shoppers"], entry["shoppers_failed"]
    recovery = entry["recovery_s"]
    return (
        str(entry["policy"]),
        str(entry["slow_hop"]),
        x(amp["during"]),
        x(amp["after"]),
        x(amp["theory"]),
        f"{failed} of {shoppers}" + (f" ({failed / shoppers:.0%})" if shoppers else ""),
        "-" if recovery is None else f"{round(recovery, 3):g} s",
        str(entry["outcome"]).replace("_", " "),
    )


def ladder_table_html(entries: Sequence[Mapping[str, Any]]) -> str:
    """The ladder as an HTML table: one row per policy's ``summary["ladder"][lane]`` entry, in
    the order given (the seed's first)."""
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in LADDER_COLUMNS) + "</tr>"
    body = "".join(
        f"<tr class={html.escape(str(e['outcome']))}>"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in ladder_cells(e))
        + "</tr>"
        for e in entries
    )
    return f"<table class=ladder>{head}{body}</table>"
