"""The ``doorbuster`` command line.

One exit point: :func:`main` runs the Typer app, catches :class:`DoorbusterError` once and
prints ``ErrorType: message``; exit codes are 0 success, 1 expectations failed, 2 usage or
configuration error, 3 environment error.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.config import systems
from harness.config.files import read_yaml
from harness.config.scenarios import load_scenario
from harness.faults.actions import add_held, remove_faults
from harness.faults.chaos import Chaos, parse_attributes
from harness.faults.leases import FaultLease, Leftover, fault_owners, forget_removed_faults, sweep_leftovers
from harness.stack.control import Stack
from harness.stack.state import StateDir, default_state_dir
from model.errors import ConfigError, DoorbusterError, ExitCode, ExpectationFailed, StackNotRunning
from model.faults import FaultSpec
from model.scenario import parse_seconds
from model.settings import BROKERS, StackSettings
from model.system import SystemSpec
from model.topology import LANES, Topology
from model.validation import overlay, validation_problems

__all__ = ["app", "main", "parse_duration"]


app = typer.Typer(
    help="Load and chaos harness: a sync request chain beside a queue-backed design.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
toxic_app = typer.Typer(help="Add, list and remove faults (Toxiproxy toxics and HTTP faults).")
proxy_app = typer.Typer(help="Take a dependency's proxy down or bring it back.")
app.add_typer(toxic_app, name="toxic")
app.add_typer(proxy_app, name="proxy")

out = Console()
err = Console(stderr=True)


class _Context:
    state_dir: Path = default_state_dir()


_ctx = _Context()


@app.callback()
def _root(
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the stack keeps its state (env DOORBUSTER_STATE_DIR)."),
    ] = None,
) -> None:
    if state_dir is not None:
        _ctx.state_dir = state_dir


def _stack() -> Stack:
    return Stack(StateDir(_ctx.state_dir))


def _running() -> Topology:
    """The running stack's topology, after removing faults left by processes that died."""
    stack = _stack()
    topology = stack.running_topology()
    _remove_orphan_faults(stack, topology)
    return topology


def _stack_lease() -> FaultLease:
    """The lease of faults added for good, in the running supervisor's name."""
    pid = _stack().supervisor_pid()
    if pid is None:
        raise StackNotRunning("the stack stopped meanwhile; run: doorbuster up")
    return FaultLease.of_stack(_ctx.state_dir, pid)


def _forget_removed(chaos: Chaos) -> None:
    """After a removal: the stack's lease no longer holds what is gone."""
    forget_removed_faults(_ctx.state_dir, chaos)


def _remove_orphan_faults(stack: Stack, topology: Topology) -> list[Leftover]:
    """Remove the faults whose owner died (a run killed with kill -9), and say so."""
    chaos = Chaos(topology)
    leftovers = sweep_leftovers(stack.state.root, chaos)
    # Faults removed without a doorbuster command (a reset through Toxiproxy's API) are
    # forgotten too, before anything reads who applied what.
    forget_removed_faults(stack.state.root, chaos)
    for leftover in leftovers:
        verb = "removed a leftover fault" if leftover.removed else "a leftover fault is still active"
        err.print(f"{verb}: {escape(leftover.describe())}")
    return leftovers


def parse_duration(text: str) -> float:
    """``"90s"``, ``"2m"``, ``"500ms"``, ``"1.5"`` (seconds) -> seconds, for an option.

    >>> parse_duration("2m"), parse_duration("500ms")
    (120.0, 0.5)
    """
    try:
        seconds = parse_seconds(text)
    except ValueError as exc:
        raise ConfigError(f"duration {text!r}: {exc}") from None
    if seconds <= 0:
        raise ConfigError(f"duration {text!r} must be positive")
    return seconds


def load_settings(
    config: Path | None,
    *,
    broker: str | None,
    base_port: int | None,
    toxiproxy_port: int | None,
    time_scale: float | None,
    base: StackSettings | None = None,
    system: str | None = None,
    allow_hosts: tuple[str, ...] = (),
) -> StackSettings:
    """The stack settings: ``base`` (a scenario's), then a YAML file, then flags, each
    overriding the one before; errors name the file and the field."""
    data: dict[str, Any] = base.model_dump(by_alias=True) if base is not None else {}
    if config is not None:
        loaded = read_yaml(config)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{config}: expected a mapping of settings at the top level")
        data = overlay(data, dict(loaded or {}))
    if broker is not None:
        data["broker"] = broker
    if base_port is not None or toxiproxy_port is not None:
        ports = dict(data.get("ports") or {})
        if base_port is not None:
            ports["base"] = base_port
        if toxiproxy_port is not None:
            ports["toxiproxy_api"] = toxiproxy_port
        data["ports"] = ports
    if time_scale is not None:
        data["time_scale"] = time_scale
    if system is not None:
        spec = systems.for_settings(system)
        data["system"] = spec.model_dump(mode="json") if spec is not None else None
    if data.get("system") is not None:
        systems.check_hosts(SystemSpec.model_validate(data["system"]), allow_hosts)
    try:
        return StackSettings.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{config or 'settings'}: {validation_problems(exc)}") from None


def _lanes(lane: str) -> tuple[str, ...]:
    if lane == "both":
        return LANES
    if lane not in LANES:
        raise ConfigError(f"--lane {lane!r}: expected sync, async or both")
    return (lane,)


# -- stack ---------------------------------------------------------------------------------
@app.command()
def up(
    broker: Annotated[
        str | None,
        typer.Option(
            help="The async lane's broker: " + ", ".join(BROKERS) + " (default: the scenario's "
            "or the settings file's, else rabbitmq)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML file of stack settings (over the scenario's, if one is named)."),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="Start with this scenario's stack settings (for plain locust -f)."),
    ] = None,
    base_port: Annotated[int | None, typer.Option(help="First port of the port layout.")] = None,
    toxiproxy_port: Annotated[int | None, typer.Option(help="Toxiproxy API port.")] = None,
    time_scale: Annotated[
        float | None, typer.Option(help="Multiply every latency and timeout (tests use < 1).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.")] = 90.0,
    system: Annotated[
        str | None,
        typer.Option(
            help="The system under test: a file under systems/ by name, or a path (default: checkout)."
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None, typer.Option("--allow-host", help="A host off loopback the system may name.")
    ] = None,
) -> None:
    """Start every process under one supervisor, wait until healthy, print the endpoints."""
    if broker is not None and broker not in BROKERS:
        raise ConfigError(f"--broker {broker!r}: expected one of {', '.join(BROKERS)}")
    scenario_settings = load_scenario(scenario, system=system)[0].stack if scenario is not None else None
    settings = load_settings(
        config,
        broker=broker,
        base_port=base_port,
        toxiproxy_port=toxiproxy_port,
        time_scale=time_scale,
        base=scenario_settings,
        system=system,
        allow_hosts=tuple(allow_host or ()),
    )
    stack = _stack()
    started = time.monotonic()
    with err.status("starting the stack..."):
        topology = stack.up(settings, timeout_s=timeout)
    out.print(f"[green]healthy[/] in {time.monotonic() - started:.1f}s (state in {stack.state.root})")
    if topology.system is not None:
        out.print(f"  system         {topology.system.name}")
    for lane in topology.lanes:
        out.print(f"  {lane:<6} orders  {topology.lane_url(lane)}")
    out.print(f"  toxiproxy      {topology.toxiproxy.url}")
    out.print(f"  live view      {topology.endpoint('live').url}/")
    if topology.has_broker:
        out.print(f"  broker         {topology.settings.broker} at {topology.broker.address}")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Health of each process, the proxies, the active faults; a fault whose owner is gone
    (a run killed with kill -9) is removed first and named."""
    stack = _stack()
    leftovers: list[Leftover] = []
    if stack.supervisor_pid() is not None:
        try:
            leftovers = _remove_orphan_faults(stack, stack.topology())
        except DoorbusterError as exc:
            err.print(
                f"could not look for faults whose owner is gone: {type(exc).__name__}: {escape(str(exc))}"
            )
    snapshot = stack.status()
    if as_json:
        data = snapshot.as_json()
        data["leftover_faults"] = [leftover.as_json() for leftover in leftovers]
        out.print_json(json.dumps(data))
        if not snapshot.running:
            raise typer.Exit(int(ExitCode.ENVIRONMENT))
        return
    table = Table("process", "address", "pid", "healthy", "restarts")
    for p in snapshot.processes:
        table.add_row(
            p.name,
            p.address,
            str(p.pid or "-"),
            "yes" if p.healthy else "[red]no[/]",
            str(p.restarts),
        )
    out.print(table)
    out.print(f"live view: {snapshot.topology.endpoint('live').url}/")
    out.print(f"faults active: {len(snapshot.faults)}")
    for fault in snapshot.faults:
        line = escape(f"  {fault['lane']}-{fault['dependency']}: {fault['type']} {fault['attributes']}")
        if fault["foreign"]:
            out.print(f"{line} [red]applied outside doorbuster[/]")
        else:
            out.print(f"{line} (applied by {escape(str(fault['owner']))})")
    if leftovers:
        out.print(f"faults whose owner is gone: {len(leftovers)}")
        for leftover in leftovers:
            state = "removed" if leftover.removed else "[red]still active[/]"
            out.print(f"  {state}: {escape(leftover.describe())}")
    if not snapshot.running:
        err.print("StackNotRunning: no supervisor is running; start with: doorbuster up")
        raise typer.Exit(int(ExitCode.ENVIRONMENT))


@app.command()
def down() -> None:
    """Remove every fault and stop everything."""
    stopped = _stack().down()
    out.print("stopped" if stopped else "nothing was running")


# -- faults ----------------------------------------------------------------------------------
@toxic_app.command("add")
def toxic_add(
    dependency: Annotated[str, typer.Argument(help="payment, inventory, ..., broker")],
    type_: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="A Toxiproxy toxic type, http_error or http_delay."),
    ],
    lane: Annotated[str, typer.Option(help="sync, async or both.")] = "both",
    attr: Annotated[list[str] | None, typer.Option("--attr", help="KEY=VALUE, repeatable.")] = None,
    toxicity: Annotated[float, typer.Option(help="Fraction of connections affected.")] = 1.0,
    stream: Annotated[str, typer.Option(help="upstream or downstream.")] = "downstream",
    name: Annotated[str | None, typer.Option(help="Toxic name (default doorbuster_TYPE_STREAM).")] = None,
    for_: Annotated[
        str | None,
        typer.Option("--for", help="Remove it again after this long (e.g. 30s); blocks."),
    ] = None,
) -> None:
    """Add a fault to a dependency on one or both lanes."""
    # Everything the command line says is checked before the stack is even looked at.
    duration = parse_duration(for_) if for_ is not None else None
    lanes, attributes = _lanes(lane), parse_attributes(attr or [])
    topology = _running()
    spec = FaultSpec(
        dependency=dependency,
        type=type_,
        lanes=lanes,
        attributes=attributes,
        toxicity=toxicity,
        stream=stream,
        name=name,
    ).validate(topology)
    chaos = Chaos(topology)
    fault_name = spec.type if spec.is_http else spec.toxic_name
    # A fault meant to end is leased: if this process is killed, the next command removes it.
    # One added for good is the stack's: doorbuster's, not foreign, for as long as the stack runs.
    if duration is not None:
        lease = FaultLease(_ctx.state_dir, owner="doorbuster toxic add --for")
        applied = add_held(chaos, spec, lease, by=None)
    else:
        lease = _stack_lease()
        applied = add_held(chaos, spec, lease, by="doorbuster toxic add")
    for fault in applied:
        out.print(f"added {fault.type} on {fault.lane}-{fault.dependency} {fault.attributes}")
    if duration is None:
        return
    try:
        with err.status(f"holding the fault for {duration:g}s (Ctrl-C removes it now)"):
            time.sleep(duration)
    finally:
        removed = chaos.remove(spec.dependency, spec.lanes, fault_name)
        lease.close()
        out.print(f"removed {removed} fault(s)")


@toxic_app.command("list")
def toxic_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every active fault, on both lanes, and who applied it (a fault no doorbuster command
    holds was applied outside doorbuster: toxiproxy-cli, Chaos Toolkit, Toxiproxy's API)."""
    owned = fault_owners(_ctx.state_dir, Chaos(_running()).active())
    if as_json:
        out.print_json(json.dumps([o.as_json() for o in owned]))
        return
    if not owned:
        out.print("no faults active")
        return
    table = Table("lane", "dependency", "kind", "type", "name", "attributes", "toxicity", "applied by")
    for o in owned:
        f = o.fault
        table.add_row(
            f.lane,
            f.dependency,
            f.kind,
            f.type,
            escape(f.name),
            escape(json.dumps(f.attributes)),
            f"{f.toxicity:g}",
            f"[red]{o.applied_by}[/]" if o.foreign else escape(o.applied_by),
        )
    out.print(table)


@toxic_app.command("remove")
def toxic_remove(
    dependency: Annotated[str, typer.Argument()],
    name: Annotated[str | None, typer.Argument(help="A toxic name or fault type; default all.")] = None,
    lane: Annotated[str, typer.Option(help="sync, async or both.")] = "both",
) -> None:
    """Remove one fault, or every fault, from a dependency."""
    removed = remove_faults(_ctx.state_dir, _running(), dependency, _lanes(lane), name)
    out.print(f"removed {removed} fault(s)")


@toxic_app.command("reset")
def toxic_reset() -> None:
    """Remove every fault and enable every proxy."""
    chaos = Chaos(_running())
    chaos.reset()
    _forget_removed(chaos)
    out.print("every fault removed, every proxy enabled")


def _set_proxy(dependency: str, lane: str, *, enabled: bool) -> None:
    topology = _running()
    lanes = _lanes(lane)
    for each in lanes:
        topology.proxy(each, dependency)
    chaos = Chaos(topology)
    if not enabled:  # a disabled proxy has no name: the stack's lease says doorbuster did it
        _stack_lease().hold(lanes, dependency, "down", by="doorbuster proxy disable")
    chaos.set_enabled(dependency, lanes, enabled=enabled)
    if enabled:
        _forget_removed(chaos)
    verb = "enabled" if enabled else "disabled"
    out.print(f"{verb} {', '.join(f'{each}-{dependency}' for each in lanes)}")


@proxy_app.command("disable")
def proxy_disable(
    dependency: Annotated[str, typer.Argument()],
    lane: Annotated[str, typer.Option(help="sync, async or both.")] = "both",
) -> None:
    """Take a dependency's proxy down: its connections drop, new ones are refused."""
    _set_proxy(dependency, lane, enabled=False)


@proxy_app.command("enable")
def proxy_enable(
    dependency: Annotated[str, typer.Argument()],
    lane: Annotated[str, typer.Option(help="sync, async or both.")] = "both",
) -> None:
    """Bring a dependency's proxy back."""
    _set_proxy(dependency, lane, enabled=True)


# -- scenarios --------------------------------------------------------------------------------
@app.command()
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
) -> None:
    """Drive both lanes with the same traffic and faults; verdicts and a report."""
    from harness.cli.progress import ConsoleProgress
    from harness.report.junit import check_junit_path, write_junit
    from harness.run.plan import RunOptions
    from harness.run.runner import run_scenario
    from model.settings import PortSettings

    ports = None
    if base_port is not None or toxiproxy_port is not None:
        try:
            ports = PortSettings(
                base=base_port or PortSettings().base,
                toxiproxy_api=toxiproxy_port or PortSettings().toxiproxy_api,
            )
        except pydantic.ValidationError as exc:
            raise ConfigError(f"ports: {exc.errors()[0]['msg']}") from None
    if time_scale is not None and not 0 < time_scale <= 10:
        raise ConfigError("--time-scale must be more than 0 and at most 10")
    targets: dict[str, str] = {}
    for item in target or []:
        lane, sep, url = item.partition("=")
        if not sep or not url:
            raise ConfigError(f"--target {item!r}: expected LANE=URL, like sync=http://127.0.0.1:9000")
        targets[lane] = url
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
    )
    result = run_scenario(options, _stack(), ConsoleProgress(err))
    summary = result.summary
    out.print(verdict_lines(summary))
    for line in summary.get("reading", []):
        out.print(f"  {escape(line)}")
    out.print(f"report: {result.run_dir / 'report.html'}")
    out.print("the stack is still up for the next run: `doorbuster down` stops it")
    if junit is not None:
        write_junit(junit, summary)  # exit 2 if it can not be written: the run's files stay
        out.print(f"junit: {junit}", soft_wrap=True)
    if summary.get("interrupted"):
        err.print("Interrupted: the run was stopped early; every fault was removed.")
        raise typer.Exit(130)
    if not result.passed:
        raise ExpectationFailed(verdict_count(summary["verdicts"]))


_OUTCOME_STYLE = {
    "pass": "[green]PASS[/]",
    "fail": "[red]FAIL[/]",
    "undetermined": "[bold yellow]UNDETERMINED[/]",
}


def verdict_lines(summary: dict[str, Any]) -> Table:
    """The verdicts for the terminal; an undetermined one says what more data would decide it."""
    from harness.analysis.verdicts import outcome_of

    scale = summary.get("time_scale", 1.0)
    title = f"{summary['scenario']}{'' if scale == 1 else f' at time scale {scale:g}'}: verdicts"
    table = Table("", "expectation", "observed", title=title, title_justify="left")
    for v in summary["verdicts"]:
        outcome = outcome_of(v)
        observed = escape(v["observed"])
        if outcome == "undetermined" and v.get("reason"):
            observed += f"\n[yellow]{escape(v['reason'])}[/]"
        table.add_row(_OUTCOME_STYLE[outcome], escape(v["expectation"]), observed)
    return table


def verdict_count(verdicts: list[dict[str, Any]]) -> str:
    """``1 expectation failed, 2 undetermined (of 7)``: the message of exit 1."""
    from harness.analysis.verdicts import outcome_of

    outcomes = [outcome_of(v) for v in verdicts]
    parts = [f"{outcomes.count('fail')} expectation(s) failed"] if "fail" in outcomes else []
    if "undetermined" in outcomes:
        parts.append(
            f"{outcomes.count('undetermined')} undetermined (their reasons say what would decide them)"
        )
    return ", ".join(parts or ["the run did not pass"]) + f" (of {len(outcomes)})"


@app.command()
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


@app.command()
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
        from harness.sweep.runner import judge_sweep

        if scenario is not None or as_json or junit is not None:
            raise ConfigError(
                f"{run_dir} is a sweep: --scenario, --json and --junit judge one run; "
                "give a trial's directory"
            )
        _sweep_done(judge_sweep(run_dir))
        return

    if junit is not None:
        check_junit_path(junit)
    summary = judge_run(run_dir, scenario_file=scenario, write=not as_json)
    if as_json:
        verdicts = {k: summary[k] for k in ("scenario", "passed", "verdicts")}
        out.print_json(json.dumps(verdicts))
    else:
        out.print(verdict_lines(summary))
        out.print(f"report: {run_dir / 'report.html'}")
    if junit is not None:
        write_junit(junit, summary)  # exit 2 if it can not be written: summary and report stay
        if not as_json:
            out.print(f"junit: {junit}", soft_wrap=True)
    if not summary["passed"]:
        raise ExpectationFailed(verdict_count(summary["verdicts"]))


_CHANGE_STYLE = {
    "regressed": "[red]REGRESSED[/]",
    "within bound": "[green]within bound[/]",
    "undetermined": "[bold yellow]UNDETERMINED[/]",
}


@app.command()
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
                _OUTCOME_STYLE.get(v.base_outcome, "-"),
                _OUTCOME_STYLE.get(v.new_outcome, "-"),
            )
        out.print(verdicts)
        for difference in comparison.differences:
            out.print(f"[yellow]compared with --force although[/] {escape(difference)}")
        out.print(escape(comparison.headline), soft_wrap=True)
        out.print(f"page: {page}", soft_wrap=True)
    if comparison.regressed:
        raise ExpectationFailed(comparison.headline)


def _sweep_done(result: Any, resume: list[str] | None = None) -> None:
    from harness.sweep.runner import SweepResult

    assert isinstance(result, SweepResult)
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
        command = " ".join(
            shlex.quote(a) for a in ["doorbuster", "sweep", *(resume or []), "--out", str(result.sweep_dir)]
        )
        err.print(
            f"Interrupted: every fault was removed, the finished trials kept; resume with: {escape(command)}"
        )
        raise typer.Exit(130)
    if not result.complete or result.open_cells:
        why = result.data["stopped"] or f"{result.open_cells} cell(s) undetermined"
        raise ExpectationFailed(f"the map is incomplete: {why}; see {result.sweep_dir / 'sweep.html'}")


@app.command()
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
    from harness.sweep.runner import SweepOptions, run_sweep

    loaded, _ = load_scenario(scenario)
    if config is not None:
        settings = load_settings(
            config, broker=None, base_port=None, toxiproxy_port=None, time_scale=None, base=loaded.stack
        )
        loaded = loaded.model_copy(update={"stack": settings})
    if time_scale is not None and not 0 < time_scale <= 10:
        raise ConfigError("--time-scale must be more than 0 and at most 10")
    options = SweepOptions(
        out=out_dir,
        time_scale=time_scale,
        max_time_s=parse_duration(max_time) if max_time is not None else None,
        max_trials=max_trials,
        reset_faults=reset_faults,
    )
    resume = [scenario]
    for flag, value in (("--time-scale", time_scale), ("--max-time", max_time), ("--config", config)):
        if value is not None:
            resume += [flag, str(value)]
    _sweep_done(run_sweep(loaded, options, _stack(), ConsoleProgress(err)), resume)


@app.command()
def dashboards(
    system: Annotated[
        str | None,
        typer.Option(help="Instead: the Grafana dashboard of this system (a name under systems/ or a path)."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="With --system: write it here (default: print it).")
    ] = None,
) -> None:
    """Regenerate grafana/ (dashboards, provisioning) and the docker-compose files; or, with
    --system, write the dashboard of a system of your own (the panels it has data for)."""
    from harness.stack.generated import system_dashboard, write_generated

    if system is not None:
        spec = systems.load_system(system)
        if spec.builtin is not None:
            raise ConfigError(f"--system {system}: the checkout's dashboards are grafana/dashboards/*.json")
        text = json.dumps(system_dashboard(spec), indent=2, sort_keys=True) + "\n"
        if out_file is None:
            out.print(text, end="", markup=False, highlight=False)
            return
        try:
            out_file.write_text(text)
        except OSError as exc:
            raise ConfigError(f"--out {out_file}: {exc.strerror}") from None
        out.print(f"wrote {out_file}")
        return
    if out_file is not None:
        raise ConfigError("--out goes with --system")
    written = write_generated()
    for path in written:
        out.print(f"wrote {path}")
    if not written:
        out.print("everything was up to date")


@app.command()
def scenarios() -> None:
    """List the shipped scenarios."""
    from harness.config.scenarios import shipped_scenarios

    for name in shipped_scenarios():
        scenario, _ = load_scenario(name)
        first = scenario.description.split(". ")[0].strip()
        out.print(f"[bold]{name}[/] ({scenario.duration_s:.0f}s): {escape(first)}")


# -- the side-by-side smoke comparison ---------------------------------------------------------
@app.command()
def smoke(
    orders: Annotated[int, typer.Option(min=1, max=1000, help="Orders per lane per phase.")] = 24,
    concurrency: Annotated[int, typer.Option(min=1, max=200, help="Orders in flight per lane.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Send the same orders to both lanes, at baseline and with email 3 s slow; compare."""
    from harness.run.smoke import run_smoke

    topology = _running()
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
            lease=FaultLease(_ctx.state_dir, owner="doorbuster smoke"),
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the one place that turns errors into messages and exit codes."""
    try:
        # Typer's own standalone mode reports usage errors (exit 2) in its usual form; our
        # errors pass through it untouched and are reported here.
        app(args=argv, prog_name="doorbuster")
    except DoorbusterError as exc:
        err.print(
            f"[bold red]{type(exc).__name__}[/]: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        return int(exc.exit_code)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        err.print(str(exc.code), soft_wrap=True)
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
