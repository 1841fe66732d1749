"""Fault leases: who applied which fault, so a fault whose owner died is found and removed.

Whatever applies a fault that it means to remove again (a run's chaos timeline, ``toxic add
--for``) holds a lease: a file in the state directory naming its pid and the faults it has
applied.  A process killed with ``kill -9`` can not clean up after itself; the next
``doorbuster`` command sees that the lease's pid is gone, says so, and removes those faults.
A fault added for good (``toxic add`` without ``--for``) has no lease and is left alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.chaos import Chaos
from harness.processes import start_ticks, still_ours
from model.errors import DoorbusterError

__all__ = ["FaultLease", "Leftover", "sweep_leftovers"]


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """A fault whose owner is gone, and whether the sweep could remove it."""

    owner_pid: int
    owner: str
    lane: str
    dependency: str
    name: str  # toxic name, HTTP fault type, or "down"
    removed: bool = True
    error: str | None = None

    def describe(self) -> str:
        what = f"{self.lane}-{self.dependency} {self.name} (left by {self.owner}, pid {self.owner_pid}, gone)"
        if self.removed:
            return what
        return (
            f"{what}: not removed ({self.error}); the next doorbuster command tries again, "
            "`doorbuster toxic reset` removes every fault"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "dependency": self.dependency,
            "name": self.name,
            "owner": self.owner,
            "owner_pid": self.owner_pid,
            "removed": self.removed,
            "error": self.error,
        }


class FaultLease:
    """This process's lease: the faults it has applied and not removed yet."""

    def __init__(self, root: Path, owner: str, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self.owner = owner
        self.path = root / "leases" / f"{self.pid}.json"
        self.faults: dict[str, dict[str, Any]] = {}

    def _save(self) -> None:
        if not self.faults:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "pid": self.pid,
                    "start": start_ticks(self.pid),
                    "owner": self.owner,
                    "faults": list(self.faults.values()),
                }
            )
        )
        tmp.replace(self.path)

    def hold(self, lanes: tuple[str, ...], dependency: str, name: str) -> None:
        """Record before applying: a crash between the two leaves a lease for nothing, harmless."""
        for lane in lanes:
            self.faults[f"{lane}/{dependency}/{name}"] = {
                "lane": lane,
                "dependency": dependency,
                "name": name,
            }
        self._save()

    def release(self, lanes: tuple[str, ...], dependency: str, name: str) -> None:
        for lane in lanes:
            self.faults.pop(f"{lane}/{dependency}/{name}", None)
        self._save()

    def close(self) -> None:
        self.faults.clear()
        self._save()


def _leases(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((root / "leases").glob("*.json")):
        try:
            yield path, json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)


def sweep_leftovers(root: Path, chaos: Chaos) -> list[Leftover]:
    """Remove every fault held by a lease whose process is gone; returns each such fault that
    was still in force, removed or not.  A fault that could not be removed stays in its lease,
    so the next sweep tries again instead of forgetting it."""
    found: list[Leftover] = []
    active = None
    for path, lease in _leases(root):
        pid = int(lease.get("pid", 0))
        if still_ours(pid, lease.get("start")):
            continue
        if active is None:
            active = chaos.active()
        kept: list[dict[str, Any]] = []
        for fault in lease.get("faults", []):
            match = [
                f
                for f in active
                if f.lane == fault["lane"]
                and f.dependency == fault["dependency"]
                and fault["name"] in (f.name, f.type)
            ]
            if not match:
                continue
            error = None
            try:
                if fault["name"] == "down":
                    chaos.set_enabled(fault["dependency"], (fault["lane"],), enabled=True)
                else:
                    chaos.remove(fault["dependency"], (fault["lane"],), fault["name"])
            except DoorbusterError as exc:
                error = f"{type(exc).__name__}: {exc}"
                kept.append(fault)
            found.append(
                Leftover(
                    owner_pid=pid,
                    owner=str(lease.get("owner", "?")),
                    lane=fault["lane"],
                    dependency=fault["dependency"],
                    name=fault["name"],
                    removed=error is None,
                    error=error,
                )
            )
        if kept:
            path.write_text(json.dumps({**lease, "faults": kept}))
        else:
            path.unlink(missing_ok=True)
    return found
