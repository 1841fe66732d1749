"""A system's service commands on one stack: its placeholders resolved, its programs found.

The supervisor starts them; ``doorbuster up`` checks first that every program a system file
names exists, so a missing one is a clear message (exit 3) with nothing started.
"""

from __future__ import annotations

import os
import shutil
import sys

from harness.binaries import PROJECT_ROOT
from harness.stack.state import StateDir
from model.errors import MissingBinary
from model.system import ServiceSpec, expand
from model.topology import Topology

__all__ = ["check_programs", "service_values", "setup_commands", "start_command"]


def service_values(topology: Topology, state: StateDir) -> dict[str, str]:
    """What a system's placeholders stand for on this stack."""
    return {
        **topology.address_values(),
        "root": str(PROJECT_ROOT),
        "state": str(state.root),
        "python": sys.executable,
    }


def start_command(
    service: ServiceSpec, topology: Topology, state: StateDir
) -> tuple[list[str], dict[str, str]]:
    """The service's argument list and its extra environment, resolved."""
    values = service_values(topology, state)
    cmd = [expand(arg, values) for arg in service.command or ()]
    return cmd, {key: expand(value, values) for key, value in service.env.items()}


def setup_commands(service: ServiceSpec, topology: Topology, state: StateDir) -> list[list[str]]:
    values = service_values(topology, state)
    return [[expand(arg, values) for arg in step] for step in service.setup]


def _runnable(program: str) -> bool:
    if os.sep in program:
        return os.path.isfile(program) and os.access(program, os.X_OK)
    return shutil.which(program) is not None


def check_programs(topology: Topology, state: StateDir) -> None:
    """MissingBinary naming the service and the program, for the first one not found."""
    system = topology.system
    if system is None:
        return
    for service in system.services:
        if not service.managed:
            continue
        commands = [start_command(service, topology, state)[0], *setup_commands(service, topology, state)]
        for cmd in commands:
            if not _runnable(cmd[0]):
                raise MissingBinary(
                    f"system {system.name}: service {service.name} runs {cmd[0]}, which is not an "
                    "executable file here (not installed? `make setup` installs what the shipped "
                    "systems need)"
                )
