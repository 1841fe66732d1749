"""Adding and removing a fault on a running stack: the one path the CLI (``doorbuster toxic``)
and the live view both take, so a fault from either is validated, leased and forgotten alike."""

from __future__ import annotations

import contextlib
from pathlib import Path

from harness.faults.chaos import ActiveFault, Chaos
from harness.faults.leases import FaultLease, forget_removed_faults, stack_lease
from model.errors import DoorbusterError
from model.faults import FaultSpec
from model.topology import Topology

__all__ = ["add_held", "lanes_with", "remove_faults", "reset_faults", "set_proxy"]


def lanes_with(chaos: Chaos, dependency: str, name: str) -> set[str]:
    """The lanes where a fault of that name (or type) is in force on ``dependency``."""
    return {f.lane for f in chaos.active() if f.dependency == dependency and name in (f.name, f.type)}


def add_held(chaos: Chaos, spec: FaultSpec, lease: FaultLease, *, by: str | None) -> list[ActiveFault]:
    """Apply ``spec`` (validated) held by ``lease``; if it fails, the lease does not claim what
    this command did not apply (a toxic of that name someone else had added, say)."""
    name = spec.fault_name
    held_before, there_before = set(lease.faults), lanes_with(chaos, spec.dependency, name)
    lease.hold(spec.lanes, spec.dependency, name, by=by)
    try:
        return chaos.add(spec)
    except DoorbusterError:
        there_now: set[str] = set()
        with contextlib.suppress(DoorbusterError):
            there_now = lanes_with(chaos, spec.dependency, name)
        not_ours = tuple(
            lane
            for lane in spec.lanes
            if f"{lane}/{spec.dependency}/{name}" not in held_before
            and (lane in there_before or lane not in there_now)
        )
        lease.release(not_ours, spec.dependency, name)
        raise


def remove_faults(
    root: Path, topology: Topology, dependency: str, lanes: tuple[str, ...], name: str | None
) -> int:
    """Remove one fault (by name or type), or every fault, from ``dependency`` on ``lanes``;
    the leases forget what is gone.  ConfigError for a lane without that dependency."""
    for each in lanes:
        topology.proxy(each, dependency)
    chaos = Chaos(topology)
    removed = chaos.remove(dependency, lanes, name)
    forget_removed_faults(root, chaos)
    return removed


def reset_faults(root: Path, chaos: Chaos) -> None:
    """Remove every fault and enable every proxy; the leases forget them."""
    chaos.reset()
    forget_removed_faults(root, chaos)


def set_proxy(
    root: Path,
    chaos: Chaos,
    dependency: str,
    lanes: tuple[str, ...],
    *,
    enabled: bool,
    supervisor_pid: int | None,
) -> None:
    """Take ``dependency``'s proxies on ``lanes`` down (held by the stack's lease, in the
    running supervisor's name) or bring them back (the lease forgets them).  ConfigError for a
    lane without that dependency, before anything changes."""
    for each in lanes:
        chaos.topology.proxy(each, dependency)
    if not enabled:  # a disabled proxy has no name: the stack's lease says doorbuster did it
        stack_lease(root, supervisor_pid).hold(lanes, dependency, "down", by="doorbuster proxy disable")
    chaos.set_enabled(dependency, lanes, enabled=enabled)
    if enabled:
        forget_removed_faults(root, chaos)
