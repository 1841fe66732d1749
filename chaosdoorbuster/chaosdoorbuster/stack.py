"""The running stack an activity acts on, found in its state directory as the CLI finds it."""

from __future__ import annotations

from pathlib import Path

from harness.faults.chaos import Chaos
from harness.faults.leases import forget_removed_faults, sweep_leftovers
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model.topology import Topology

__all__ = ["running_stack"]


def running_stack(root: Path) -> Topology:
    """The topology of the stack running from ``root``, after removing the faults of owners
    that died (as every doorbuster command does first); StackNotRunning if there is none."""
    stack = Stack(StateDir(root))
    topology = stack.running_topology()
    chaos = Chaos(topology)
    sweep_leftovers(stack.state.root, chaos)
    forget_removed_faults(stack.state.root, chaos)
    return topology
