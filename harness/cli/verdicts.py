"""Verdicts for the terminal: the table ``run`` and ``judge`` print, and the message of exit 1."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from harness.records.summary import Summary
from harness.records.verdicts import Verdict
from harness.report.shootout import ShootoutSummary

__all__ = ["OUTCOME_STYLE", "verdict_count", "verdict_lines"]

OUTCOME_STYLE = {
    "pass": "[green]PASS[/]",
    "fail": "[red]FAIL[/]",
    "undetermined": "[bold yellow]UNDETERMINED[/]",
}


def verdict_lines(summary: Summary | ShootoutSummary) -> Table:
    """The verdicts for the terminal; an undetermined one says what more data would decide it."""
    scale = summary.time_scale if isinstance(summary, Summary) else 1.0  # a shootout's has none
    title = f"{summary.scenario}{'' if scale == 1 else f' at time scale {scale:g}'}: verdicts"
    table = Table("", "expectation", "observed", title=title, title_justify="left")
    for v in summary.verdicts:
        observed = escape(v.observed)
        if v.outcome == "undetermined" and v.reason:
            observed += f"\n[yellow]{escape(v.reason)}[/]"
        table.add_row(OUTCOME_STYLE[v.outcome], escape(v.expectation), observed)
    return table


def verdict_count(verdicts: Sequence[Verdict]) -> str:
    """``1 expectation failed, 2 undetermined (of 7)``: the message of exit 1."""
    outcomes = [v.outcome for v in verdicts]
    parts = [f"{outcomes.count('fail')} expectation(s) failed"] if "fail" in outcomes else []
    if "undetermined" in outcomes:
        parts.append(
            f"{outcomes.count('undetermined')} undetermined (their reasons say what would decide them)"
        )
    return ", ".join(parts or ["the run did not pass"]) + f" (of {len(outcomes)})"
