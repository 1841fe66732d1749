"""A stack for unit tests: up with the settings it was started with; no process is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.stack.control import Stack
from harness.stack.state import StateDir
from model.settings import StackSettings
from model.topology import Topology


class FakeStack(Stack):
    """Records each ``up`` and counts each ``down`` (a restart is one of each)."""

    def __init__(self, root: Path, running: StackSettings | None = None) -> None:
        super().__init__(StateDir(root))
        self.settings = running
        self.ups: list[StackSettings] = []
        self.downs = 0

    def supervisor_pid(self) -> int | None:
        return 1 if self.settings is not None else None

    def topology(self) -> Topology:
        assert self.settings is not None
        return Topology.from_settings(self.settings)

    def wait_healthy(self, topology: Topology, *, timeout_s: float, supervisor: Any = None) -> None:
        return None

    def up(self, settings: StackSettings, *, timeout_s: float = 90.0) -> Topology:
        self.settings = settings
        self.ups.append(settings)
        return Topology.from_settings(settings)

    def down(self, *, timeout_s: float = 30.0) -> bool:
        self.settings, self.downs = None, self.downs + 1
        return True
