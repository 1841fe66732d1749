"""``doorbuster up``, ``status`` and ``down``: the stack's life."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.context import ctx, err, out
from harness.config.scenarios import load_scenario
from harness.config.settings import load_settings
from harness.faults.leases import Leftover
from model.errors import ConfigError, DoorbusterError, ExitCode
from model.settings import BROKERS

__all__ = ["down", "status", "up"]


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
    stack = ctx.stack()
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


def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Health of each process, the proxies, the active faults; a fault whose owner is gone
    (a run killed with kill -9) is removed first and named."""
    stack = ctx.stack()
    leftovers: list[Leftover] = []
    if stack.supervisor_pid() is not None:
        try:
            leftovers = ctx.remove_orphan_faults(stack, stack.topology())
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


def down() -> None:
    """Remove every fault and stop everything."""
    stopped = ctx.stack().down()
    out.print("stopped" if stopped else "nothing was running")
