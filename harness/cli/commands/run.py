"""``doorbuster run``, ``report``, ``judge`` and ``smoke``: a run, and what is made of its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.commands.sweep import print_sweep
from harness.cli.context import ctx, err, out
from harness.cli.verdicts import verdict_count, verdict_lines
from harness.config.timescale import check_time_scale
from harness.faults.leases import FaultLease
from model.errors import ConfigError, ExpectationFailed
from model.scenario import parse_duration

__all__ = ["judge", "report", "run", "smoke"]


def run(
    scenario: Annotated[str, typer.Argument(help="A shipped scenario's name or a YAML file.")],
    duration: Annotated[str | None, typer.Option(help="Stretch or shrink the load to this long.")] = None,
    peak_rps: Annotated[float | None, typer.Option(help="Scale the rates so the peak is this.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default runs/<time>-<name>).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Locust workers on this machine (0: one process).")] = 0,
    base_port: Annotated[int | None, typer.Option(help="Port layout (default: the running stack's).")] = None,
    toxiproxy_port: Annotated[int | None, typer.Option(help="Toxiproxy API port.")] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            help="S: the same experiment in S times its time (0.5: twice as fast): every time "
            "(stages, faults, timeouts, the stack's latencies, expectations) x S, rates x 1/S."
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target", help="LANE=URL: send that lane's load there instead (loopback unless allowed)."
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None, typer.Option("--allow-host", help="A host off loopback that --target may name.")
    ] = None,
    system: Annotated[
        str | None,
        typer.Option(help="The system under test, over the scenario's: a name under systems/ or a path."),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(help="Also write the verdicts to this file as JUnit XML (for CI).")
    ] = None,
    reset_faults: Annotated[
        bool,
        typer.Option(
            "--reset-faults",
            help="Remove faults applied outside doorbuster (toxiproxy-cli, Chaos Toolkit) instead of "
            "refusing to start (exit 3).",
        ),
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of every random draw (arrivals, shoppers' choices, the targets' retry jitter and "
            "service times); the same seed offers the same arrivals. Default: the scenario's, else a "
            "new one (in summary.json)."
        ),
    ] = None,
) -> None:
    """Drive both lanes with the same traffic and faults; verdicts and a report."""
    from harness.cli.progress import ConsoleProgress
    from harness.report.junit import check_junit_path, write_junit
    from harness.run.plan import RunOptions, parse_targets, port_settings
    from harness.run.runner import run_scenario

    ports = port_settings(base_port, toxiproxy_port)
    check_time_scale(time_scale)
    targets = parse_targets(target or [])
    if junit is not None:
        check_junit_path(junit)

    options = RunOptions(
        scenario=scenario,
        duration_s=parse_duration(duration) if duration is not None else None,
        peak_rps=peak_rps,
        out=out_dir,
        workers=workers,
        ports=ports,
        time_scale=time_scale,
        targets=targets or None,
        allow_hosts=tuple(allow_host or ()),
        system=system,
        reset_faults=reset_faults,
        seed=seed,
    )
    result = run_scenario(options, ctx.stack(), ConsoleProgress(err))
    summary = result.summary
    out.print(verdict_lines(summary))
    for line in summary.reading:
        out.print(f"  {escape(line)}")
    out.print(f"report: {result.run_dir / 'report.html'}")
    out.print("the stack is still up for the next run: `doorbuster down` stops it")
    if junit is not None:
        write_junit(junit, summary)  # exit 2 if it can not be written: the run's files stay
        out.print(f"junit: {junit}", soft_wrap=True)
    if summary.interrupted:
        err.print("Interrupted: the run was stopped early; every fault was removed.")
        raise typer.Exit(130)
    if not result.passed:
        raise ExpectationFailed(verdict_count(summary.verdicts))


def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Rebuild a run's report.html from the files in its directory."""
    from harness.report.run_page import write_report

    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a directory")
    try:
        path = write_report(run_dir)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, OverflowError) as exc:
        # The files are read and checked as files; a summary.json that is JSON but lacks
        # what the report shows (a lane's figures, a verdict's fields) surfaces here.
        raise ConfigError(
            f"{run_dir / 'summary.json'}: not the summary of a doorbuster run ({type(exc).__name__}: {exc})"
        ) from exc
    out.print(f"report: {path}")


def judge(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    scenario: Annotated[
        str | None,
        typer.Option(help="Judge this file's expectations (and metastability) instead of the run's own."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the verdicts as JSON; rewrite nothing.")
    ] = False,
    junit: Annotated[
        Path | None, typer.Option(help="Also write the verdicts to this file as JUnit XML (for CI).")
    ] = None,
) -> None:
    """Decide a run's expectations again from its files alone, with no stack; rewrites
    summary.json and report.html.  On a sweep's directory: every trial, and the sweep's
    sweep.json, map.png and sweep.html (exit codes as doorbuster sweep's)."""
    from harness.report.junit import check_junit_path, write_junit
    from harness.run.judge import judge_run
    from harness.sweep.directory import SweepDir

    if SweepDir(run_dir).is_sweep():
        from harness.sweep.runner import judge_sweep, resume_command

        if scenario is not None or as_json or junit is not None:
            raise ConfigError(
                f"{run_dir} is a sweep: --scenario, --json and --junit judge one run; "
                "give a trial's directory"
            )
        result = judge_sweep(run_dir)
        print_sweep(result, resume_command(result.sweep_dir))
        return

    if junit is not None:
        check_junit_path(junit)
    summary = judge_run(run_dir, scenario_file=scenario, write=not as_json)
    if as_json:
        verdicts = {k: summary.to_json()[k] for k in ("scenario", "passed", "verdicts")}
        out.print_json(json.dumps(verdicts))
    else:
        out.print(verdict_lines(summary))
        out.print(f"report: {run_dir / 'report.html'}")
    if junit is not None:
        write_junit(junit, summary)  # exit 2 if it can not be written: summary and report stay
        if not as_json:
            out.print(f"junit: {junit}", soft_wrap=True)
    if not summary.passed:
        raise ExpectationFailed(verdict_count(summary.verdicts))


def smoke(
    orders: Annotated[int, typer.Option(min=1, max=1000, help="Orders per lane per phase.")] = 24,
    concurrency: Annotated[int, typer.Option(min=1, max=200, help="Orders in flight per lane.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Send the same orders to both lanes, at baseline and with email 3 s slow; compare."""
    from harness.run.smoke import run_smoke

    topology = ctx.running()
    if topology.system is not None:
        raise ConfigError(
            f"smoke sends the checkout's orders to its two lanes; the stack runs system "
            f"{topology.system.name}: use doorbuster run with a scenario of that system"
        )
    with err.status("sending orders to both lanes..."):
        result = run_smoke(
            topology,
            orders=orders,
            concurrency=concurrency,
            lease=FaultLease(ctx.state_dir, owner="doorbuster smoke"),
        )
    if as_json:
        out.print_json(json.dumps(result.as_json()))
        return
    table = Table("phase", "lane", "ok / sent", "p50", "p95", "max", title="sync chain vs queue-backed")
    for p in result.phases:
        table.add_row(
            p.phase,
            p.lane,
            f"{p.ok} / {len(p.statuses)}",
            f"{p.percentile(0.5):.2f}s",
            f"{p.percentile(0.95):.2f}s",
            f"{max(p.latencies_s):.2f}s",
        )
    out.print(table)
    out.print(
        f"async: {result.async_fulfilled} of {result.async_accepted} accepted orders fulfilled "
        f"{result.fulfil_wait_s:.1f}s after the last 202"
    )
