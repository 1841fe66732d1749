"""What every report page shares: its style, the run's status line and the verdict table.

The run report (harness.report.run_page), the broker shootout's (harness.report.shootout) and the sweep's
(harness.sweep.report) each import these, and none of them another page's module.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from harness.records.verdicts import Verdict, overall

__all__ = ["OUTCOME_WORDS", "STYLE", "run_status", "verdict_table"]


# The pages' common style: the run report's, the shootout's and the sweep's.
STYLE = """\
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; font-size: 14px; }
tr.pass td:first-child { color: #1e8449; font-weight: bold; }
tr.fail td:first-child { color: #c0392b; font-weight: bold; }
tr.undetermined td:first-child { color: #9a7d0a; font-weight: bold; font-style: italic; }"""

# How a run's or a verdict's outcome is shown: word and colour.
OUTCOME_WORDS = {"pass": "PASS", "fail": "FAIL", "undetermined": "UNDETERMINED"}
_STATUS = {
    "pass": ("PASSED", "#1e8449"),
    "fail": ("FAILED", "#c0392b"),
    "undetermined": ("UNDETERMINED", "#9a7d0a"),
}


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    """Pass, fail and undetermined each shown as such; an undetermined one with its reason."""
    rows = "".join(
        f"<tr class={v.outcome}><td>{OUTCOME_WORDS[v.outcome]}</td>"
        f"<td>{html.escape(v.expectation)}</td><td>{html.escape(v.observed)}</td>"
        f"<td>{html.escape(v.reason or '')}</td></tr>"
        for v in verdicts
    )
    return (
        f"<table><tr><th></th><th>expectation</th><th>observed</th><th>why undecided</th></tr>{rows}</table>"
    )


def run_status(verdicts: Sequence[Verdict], *, passed: bool) -> tuple[str, str]:
    """The run's headline and its colour: PASSED only when every verdict passed."""
    outcome = overall(verdicts)
    if outcome == "pass" and not passed:
        outcome = "undetermined"  # interrupted: what was not measured decides nothing
    return _STATUS[outcome]
