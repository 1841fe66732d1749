"""``doorbuster toxic add|list|remove|reset`` and ``doorbuster proxy disable|enable``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from harness.cli.context import ctx, err, out
from harness.faults.actions import add_held, remove_faults, reset_faults, set_proxy
from harness.faults.chaos import ActiveFault, Chaos, parse_attributes
from harness.faults.hold import FaultHold
from harness.faults.leases import FaultLease, fault_owners, stack_lease
from model.faults import FaultSpec
from model.lanes import parse_lanes
from model.scenario import parse_duration

__all__ = ["proxy_disable", "proxy_enable", "toxic_add", "toxic_list", "toxic_remove", "toxic_reset"]

_LANE_HELP = "sync, async or both."


def _lanes(lane: str) -> tuple[str, ...]:
    return parse_lanes(lane, field="--lane")


def toxic_add(
    dependency: Annotated[str, typer.Argument(help="payment, inventory, ..., broker")],
    type_: Annotated[
        str,
        typer.Argument(metavar="TYPE", help="A Toxiproxy toxic type, http_error or http_delay."),
    ],
    lane: Annotated[str, typer.Option(help=_LANE_HELP)] = "both",
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
    topology = ctx.running()
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
    if duration is None:
        # Added for good, it is the stack's: doorbuster's, not foreign, for as long as the stack runs.
        lease = stack_lease(ctx.state_dir, ctx.stack().supervisor_pid())
        _print_added(add_held(chaos, spec, lease, by="doorbuster toxic add"))
        return
    # Meant to end, it is leased: if this process is killed, the next command removes it.
    hold = FaultHold(chaos, spec, FaultLease(ctx.state_dir, owner="doorbuster toxic add --for"))
    _print_added(hold.apply())
    try:
        with err.status(f"holding the fault for {duration:g}s (Ctrl-C removes it now)"):
            hold.wait(duration)
    finally:
        out.print(f"removed {hold.release()} fault(s)")


def _print_added(applied: list[ActiveFault]) -> None:
    for fault in applied:
        out.print(f"added {fault.type} on {fault.lane}-{fault.dependency} {fault.attributes}")


def toxic_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every active fault, on both lanes, and who applied it (a fault no doorbuster command
    holds was applied outside doorbuster: toxiproxy-cli, Chaos Toolkit, Toxiproxy's API)."""
    owned = fault_owners(ctx.state_dir, Chaos(ctx.running()).active())
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


def toxic_remove(
    dependency: Annotated[str, typer.Argument()],
    name: Annotated[str | None, typer.Argument(help="A toxic name or fault type; default all.")] = None,
    lane: Annotated[str, typer.Option(help=_LANE_HELP)] = "both",
) -> None:
    """Remove one fault, or every fault, from a dependency."""
    removed = remove_faults(ctx.state_dir, ctx.running(), dependency, _lanes(lane), name)
    out.print(f"removed {removed} fault(s)")


def toxic_reset() -> None:
    """Remove every fault and enable every proxy."""
    reset_faults(ctx.state_dir, Chaos(ctx.running()))
    out.print("every fault removed, every proxy enabled")


def _set_proxy(dependency: str, lane: str, *, enabled: bool) -> None:
    chaos, lanes = Chaos(ctx.running()), _lanes(lane)
    pid = ctx.stack().supervisor_pid()
    set_proxy(ctx.state_dir, chaos, dependency, lanes, enabled=enabled, supervisor_pid=pid)
    verb = "enabled" if enabled else "disabled"
    out.print(f"{verb} {', '.join(f'{each}-{dependency}' for each in lanes)}")


def proxy_disable(
    dependency: Annotated[str, typer.Argument()],
    lane: Annotated[str, typer.Option(help=_LANE_HELP)] = "both",
) -> None:
    """Take a dependency's proxy down: its connections drop, new ones are refused."""
    _set_proxy(dependency, lane, enabled=False)


def proxy_enable(
    dependency: Annotated[str, typer.Argument()],
    lane: Annotated[str, typer.Option(help=_LANE_HELP)] = "both",
) -> None:
    """Bring a dependency's proxy back."""
    _set_proxy(dependency, lane, enabled=True)
