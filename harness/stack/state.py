"""The state directory of a stack: its settings, its supervisor's record, logs and data.

``$DOORBUSTER_STATE_DIR``, else ``$XDG_STATE_HOME/doorbuster``, else
``~/.local/state/doorbuster``; the same for every command, so ``status`` and ``down`` find
what ``up`` started whichever directory they are run from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.processes import process_record

__all__ = ["StateDir", "default_state_dir"]


def default_state_dir() -> Path:
    explicit = os.environ.get("DOORBUSTER_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "doorbuster"


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def prepare(self) -> None:
        for path in (self.root, self.logs_dir, self.data_dir):
            path.mkdir(parents=True, exist_ok=True)

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def supervisor_file(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def read_supervisor(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.supervisor_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def write_supervisor(self, data: dict[str, Any]) -> None:
        tmp = self.supervisor_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.supervisor_file)

    def clear_supervisor(self) -> None:
        self.supervisor_file.unlink(missing_ok=True)

    @property
    def load_file(self) -> Path:
        return self.root / "load.json"

    def write_load_pids(self, pids: list[int]) -> None:
        """The load generators a run started, so `down` can stop any a crash left behind."""
        if pids:
            self.load_file.write_text(json.dumps({"processes": [process_record(pid) for pid in pids]}))
        else:
            self.load_file.unlink(missing_ok=True)

    def read_load_pids(self) -> list[tuple[int, Any]]:
        """``(pid, start)`` of each load generator recorded (see :mod:`harness.processes`)."""
        try:
            records = json.loads(self.load_file.read_text())["processes"]
            return [(int(r["pid"]), r.get("start")) for r in records]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:])
