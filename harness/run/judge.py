"""``doorbuster judge``: a run's verdicts decided again from its files, and its summary and
report rewritten."""

from __future__ import annotations

from pathlib import Path

from harness.analysis.recorded import judged_summary
from harness.records.run_dir import RunDir
from harness.records.summary import Summary

__all__ = ["judge_run"]


def judge_run(run_dir: Path, *, scenario_file: str | None = None, write: bool = True) -> Summary:
    """The run's summary decided again from its files (another file's expectations, if
    given); with ``write``, ``summary.json`` and ``report.html`` are rewritten."""
    summary = judged_summary(run_dir, scenario_file=scenario_file)
    if write:
        from harness.report.run_page import write_report  # matplotlib, only when drawing

        RunDir(run_dir).write_summary(summary)
        write_report(run_dir)
    return summary
