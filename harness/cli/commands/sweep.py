"""``doorbuster sweep``: the vulnerable-region map, and how a sweep's result is shown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.context import ctx, err, out
from harness.config.scenarios import load_scenario
from harness.config.settings import load_settings
from harness.config.timescale import check_time_scale
from model.errors import ExpectationFailed
from model.scenario import parse_duration

if TYPE_CHECKING:
    from harness.sweep.runner import SweepResult

__all__ = ["print_sweep", "sweep"]


def print_sweep(result: SweepResult, resume: str) -> None:
    """The map as tables, where its files are; exit 130 (saying ``resume``, the command that
    resumes it) if it was interrupted, 1 if a cell is open."""
    scale = result.data["grid"].get("time_scale") or 1
    title = "sweep" + ("" if scale == 1 else f" (run at time scale {scale:g})")
    table = Table("lane", "policy", "load", "trigger", "outcome", "tipped", title=title, title_justify="left")
    for lane, entries in result.data["lanes"].items():
        for e in entries:
            share = "-" if e["tipped_share"] is None else f"{e['tipped_share']:.0%} of {e['trials']}"
            written = e["as_written"]  # the section's own numbers, not the time-scaled ones
            trigger = ", ".join(f"{k} {v:g}" for k, v in written["trigger"].items())
            table.add_row(lane, e["policy"] or "", f"{written['load']:.3g}", trigger, e["outcome"], share)
    out.print(table)
    if result.data["grid"].get("policies"):
        from harness.analysis.ladder import LADDER_COLUMNS, ladder_cells
        from harness.sweep.report import ladder_entries

        for lane in result.data["lanes"]:
            ladder = Table(*LADDER_COLUMNS, title=f"retry-policy ladder, {lane} lane", title_justify="left")
            for entry in ladder_entries(result.data, lane):
                ladder.add_row(*ladder_cells(entry))
            out.print(ladder)
    out.print(f"map: {result.sweep_dir / 'map.png'}; report: {result.sweep_dir / 'sweep.html'}")
    if result.interrupted:
        err.print(
            f"Interrupted: every fault was removed, the finished trials kept; resume with: {escape(resume)}"
        )
        raise typer.Exit(130)
    if not result.complete or result.open_cells:
        why = result.data["stopped"] or f"{result.open_cells} cell(s) undetermined"
        raise ExpectationFailed(f"the map is incomplete: {why}; see {result.sweep_dir / 'sweep.html'}")


def sweep(
    scenario: Annotated[
        str, typer.Argument(help="A shipped scenario's name or a YAML file with a sweep: section.")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Sweep directory (default runs/<time>-sweep-<name>); an existing sweep's resumes."
        ),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(help="S: the sweep in S times its time (default: the section's time_scale)."),
    ] = None,
    max_time: Annotated[
        str | None,
        typer.Option(help="Start no trial after this long (default: the section's max_time, else 30m)."),
    ] = None,
    max_trials: Annotated[int | None, typer.Option(help="Run at most this many trials now.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file of stack settings over the scenario's.")
    ] = None,
    reset_faults: Annotated[
        bool,
        typer.Option(
            "--reset-faults",
            help="Remove faults applied outside doorbuster instead of refusing to start (exit 3).",
        ),
    ] = False,
) -> None:
    """Map where a trigger tips each lane into a metastable failure: one short trial per cell
    (load x trigger size/duration, per policy if any) and repeat, each cell stable, recovered, metastable
    or undetermined; sweep.json, map.png and sweep.html.  A measurement, not a pass/fail: exit 0
    when the sweep finished with every cell determined, 1 when a cell is undetermined or not run
    (a time or trial bound), 130 on Ctrl-C (resume with --out), 2 bad input, 3 environment."""
    from harness.cli.progress import ConsoleProgress
    from harness.sweep.runner import SweepOptions, resume_command, run_sweep

    loaded, _ = load_scenario(scenario)
    if config is not None:
        settings = load_settings(
            config, broker=None, base_port=None, toxiproxy_port=None, time_scale=None, base=loaded.stack
        )
        loaded = loaded.model_copy(update={"stack": settings})
    check_time_scale(time_scale)
    options = SweepOptions(
        out=out_dir,
        time_scale=time_scale,
        max_time_s=parse_duration(max_time) if max_time is not None else None,
        max_trials=max_trials,
        reset_faults=reset_faults,
    )
    result = run_sweep(loaded, options, ctx.stack(), ConsoleProgress(err))
    resume = resume_command(
        result.sweep_dir, scenario, time_scale=time_scale, max_time=max_time, config=config
    )
    print_sweep(result, resume)
