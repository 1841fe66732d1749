"""``doorbuster compare``: two runs side by side, decided from each run's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.context import out
from harness.cli.verdicts import OUTCOME_STYLE
from model.errors import ExpectationFailed

__all__ = ["compare"]


_CHANGE_STYLE = {
    "regressed": "[red]REGRESSED[/]",
    "within bound": "[green]within bound[/]",
    "undetermined": "[bold yellow]UNDETERMINED[/]",
}


def compare(
    base_run: Annotated[Path, typer.Argument(help="The baseline's run directory.")],
    new_run: Annotated[Path, typer.Argument(help="The run directory to check against it.")],
    max_regression: Annotated[
        str, typer.Option(help="How much worse a figure may be: 10% (or 0.1).")
    ] = "10%",
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Write the page here (default NEW_RUN/compare.html).")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Compare runs of different scenarios, systems, time scales or lanes.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Two runs side by side, figures and verdicts, decided from each run's files: exit 1 when
    a figure of NEW (p50/p95/p99 latency, error rate, throughput, per lane) regressed beyond
    --max-regression by the two runs' 95% intervals; a figure they can not decide is listed
    as undetermined, not a regression (exit 0, said so)."""
    from harness.analysis.compare import compare_runs, parse_bound
    from harness.report.compare_page import check_page_path, write_compare_page

    bound = parse_bound(max_regression)
    page = html_file if html_file is not None else new_run / "compare.html"
    if html_file is not None:
        check_page_path(html_file)
    comparison = compare_runs(base_run, new_run, max_regression=bound, force=force)
    write_compare_page(page, comparison)
    if as_json:
        out.print_json(json.dumps(comparison.as_json()))
    else:
        title = f"{comparison.scenario}: NEW {new_run} against BASE {base_run}"
        table = Table(
            "lane", "figure", "BASE", "NEW", "change", "", title=escape(title), title_justify="left"
        )
        for f in comparison.figures:
            change = _CHANGE_STYLE[f.change]
            if f.reason:
                change += f"\n[yellow]{escape(f.reason)}[/]"
            table.add_row(f.lane, f.figure, f.shown(f.base), f.shown(f.new), f.relative, change)
        out.print(table)
        verdicts = Table("expectation", "BASE", "NEW", title="verdicts", title_justify="left")
        for v in comparison.verdicts:
            verdicts.add_row(
                escape(v.expectation),
                OUTCOME_STYLE.get(v.base_outcome, "-"),
                OUTCOME_STYLE.get(v.new_outcome, "-"),
            )
        out.print(verdicts)
        for difference in comparison.differences:
            out.print(f"[yellow]compared with --force although[/] {escape(difference)}")
        out.print(escape(comparison.headline), soft_wrap=True)
        out.print(f"page: {page}", soft_wrap=True)
    if comparison.regressed:
        raise ExpectationFailed(comparison.headline)
