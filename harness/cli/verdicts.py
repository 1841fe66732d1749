"""Verdicts for the terminal: the table ``run`` and ``judge`` print, and the message of exit 1."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

__all__ = ["OUTCOME_STYLE", "verdict_count", "verdict_lines"]

OUTCOME_STYLE = {
    "pass": "[green]PASS[/]",
    "fail": "[red]FAIL[/]",
    "undetermined": "[bold yellow]UNDETERMINED[/]",
}


def verdict_lines(summary: dict[str, Any]) -> Table:
    """The verdicts for the terminal; an undetermined one says what more data would decide it."""
    from harness.records.verdicts import outcome_of

    scale = summary.get("time_scale", 1.0)
    title = f"{summary['scenario']}{'' if scale == 1 else f' at time scale {scale:g}'}: verdicts"
    table = Table("", "expectation", "observed", title=title, title_justify="left")
    for v in summary["verdicts"]:
        outcome = outcome_of(v)
        observed = escape(v["observed"])
        if outcome == "undetermined" and v.get("reason"):
            observed += f"\n[yellow]{escape(v['reason'])}[/]"
        table.add_row(OUTCOME_STYLE[outcome], escape(v["expectation"]), observed)
    return table


def verdict_count(verdicts: list[dict[str, Any]]) -> str:
    """``1 expectation failed, 2 undetermined (of 7)``: the message of exit 1."""
    from harness.records.verdicts import outcome_of

    outcomes = [outcome_of(v) for v in verdicts]
    parts = [f"{outcomes.count('fail')} expectation(s) failed"] if "fail" in outcomes else []
    if "undetermined" in outcomes:
        parts.append(
            f"{outcomes.count('undetermined')} undetermined (their reasons say what would decide them)"
        )
    return ", ".join(parts or ["the run did not pass"]) + f" (of {len(outcomes)})"
