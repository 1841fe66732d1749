"""What every command shares: the consoles (rich stays at the CLI's edge), the state
directory the root callback sets, and the running stack found there."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness.faults.chaos import Chaos
from harness.faults.leases import Leftover, remove_orphan_faults
from harness.stack.control import Stack
from harness.stack.state import StateDir, default_state_dir
from model.topology import Topology

__all__ = ["CliContext", "ctx", "err", "out"]

out = Console()
err = Console(stderr=True)


class CliContext:
    """The options of the root callback, for the command that runs after it."""

    state_dir: Path = default_state_dir()

    def stack(self) -> Stack:
        return Stack(StateDir(self.state_dir))

    def running(self) -> Topology:
        """The running stack's topology, after removing faults left by processes that died."""
        stack = self.stack()
        topology = stack.running_topology()
        self.remove_orphan_faults(stack, topology)
        return topology

    def remove_orphan_faults(self, stack: Stack, topology: Topology) -> list[Leftover]:
        """Remove the faults whose owner died (a run killed with kill -9), and say so."""
        leftovers = remove_orphan_faults(stack.state.root, Chaos(topology))
        for leftover in leftovers:
            verb = "removed a leftover fault" if leftover.removed else "a leftover fault is still active"
            err.print(f"{verb}: {escape(leftover.describe())}")
        return leftovers


ctx = CliContext()
