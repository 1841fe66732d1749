"""Fault leases: who applied which fault, so that every fault in force has an owner or is
named as applied outside doorbuster.

Whatever applies a fault that it means to remove again (a run's chaos timeline, ``toxic add
--for``) holds a lease: a file in the state directory naming its pid and the faults it has
applied.  A process killed with ``kill -9`` can not clean up after itself; the next
``doorbuster`` command sees that the lease's pid is gone, says so, and removes those faults.
A fault added for good (``toxic add`` without ``--for``, ``proxy disable``) is held by the
stack's lease (``leases/stack.json``, in the supervisor's name): it lives as long as the stack.

Every active fault is thus one of three (:func:`fault_owners`): doorbuster's (a lease whose
owner is alive holds it), left over (its lease's owner is gone: :func:`sweep_leftovers`
removes it) or foreign (no lease holds it: added by ``toxiproxy-cli``, Chaos Toolkit or
Toxiproxy's API, which a run will not silently remove).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from harness.faults.chaos import ActiveFault, Chaos
from harness.processes import start_ticks, still_ours
from model.errors import DoorbusterError, StackNotRunning

__all__ = [
    "FaultLease",
    "FaultOrigin",
    "Leftover",
    "OwnedFault",
    "fault_owners",
    "forget_removed_faults",
    "remove_orphan_faults",
    "stack_lease",
    "sweep_leftovers",
]

FaultOrigin = Literal["doorbuster", "leftover", "foreign"]
_STACK_LEASE = "stack.json"


@dataclass(frozen=True, kw_only=True)
class _Held:
    """One fault a lease holds, on one lane: its toxic name, HTTP fault type, or "down"."""

    lane: str
    dependency: str
    name: str
    by: str | None = None  # the command that applied it, when the lease is the stack's

    @property
    def key(self) -> str:
        return f"{self.lane}/{self.dependency}/{self.name}"

    def holds(self, fault: ActiveFault) -> bool:
        return (
            self.lane == fault.lane
            and self.dependency == fault.dependency
            and self.name in (fault.name, fault.type)
        )

    def as_json(self) -> dict[str, Any]:
        data = {"lane": self.lane, "dependency": self.dependency, "name": self.name}
        return data if self.by is None else {**data, "by": self.by}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Held:
        by = data.get("by")
        return cls(
            lane=str(data["lane"]), dependency=str(data["dependency"]), name=str(data["name"]),
            by=None if by is None else str(by),
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class _LeaseFile:
    """``leases/<pid>.json`` (or ``stack.json``): its owner, and what it holds."""

    path: Path
    pid: int
    start: int | None
    owner: str
    faults: tuple[_Held, ...]

    @property
    def alive(self) -> bool:
        return still_ours(self.pid, self.start)

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "start": self.start,
            "owner": self.owner,
            "faults": [held.as_json() for held in self.faults],
        }

    @classmethod
    def read(cls, path: Path) -> _LeaseFile | None:
        """The lease at ``path``; None if there is none (one that can not be read is removed)."""
        try:
            data = json.loads(path.read_text())
            start = data.get("start")
            return cls(
                path=path, pid=int(data.get("pid", 0)), start=start if isinstance(start, int) else None,
                owner=str(data.get("owner", "?")),
                faults=tuple(_Held.from_json(f) for f in data.get("faults", [])),
            )  # fmt: skip
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            path.unlink(missing_ok=True)
            return None

    def write(self) -> None:
        if not self.faults:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_json()))
        tmp.replace(self.path)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One writer of the lease files at a time: two commands may hold faults in the stack's."""
    folder = root / "leases"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class FaultLease:
    """A lease: the faults its owner has applied and not removed yet.

    By default this process's (``leases/<pid>.json``); :meth:`of_stack` is the stack's, for
    faults added for good, which any command may add to or release from."""

    def __init__(
        self, root: Path, owner: str, pid: int | None = None, *, file_name: str | None = None
    ) -> None:
        self.root = root
        self.pid = pid or os.getpid()
        self.owner = owner
        self.path = root / "leases" / (file_name or f"{self.pid}.json")

    @classmethod
    def of_stack(cls, root: Path, supervisor_pid: int) -> FaultLease:
        """Faults added for good: held in the supervisor's name, so they end with the stack."""
        return cls(root, owner="doorbuster, until removed", pid=supervisor_pid, file_name=_STACK_LEASE)

    def _held(self) -> dict[str, _Held]:
        lease = _LeaseFile.read(self.path)
        # Another process's (the stack's lease of a stack since stopped) is not added to.
        if lease is None or lease.pid != self.pid or lease.start != start_ticks(self.pid):
            return {}
        return {held.key: held for held in lease.faults}

    def _write(self, held: dict[str, _Held]) -> None:
        _LeaseFile(
            path=self.path, pid=self.pid, start=start_ticks(self.pid), owner=self.owner,
            faults=tuple(held.values()),
        ).write()  # fmt: skip

    @property
    def faults(self) -> tuple[str, ...]:
        """What it holds now, as ``lane/dependency/name``."""
        return tuple(self._held())

    def hold(self, lanes: tuple[str, ...], dependency: str, name: str, *, by: str | None = None) -> None:
        """Record before applying: a crash between the two leaves a lease for nothing, harmless."""
        with _locked(self.root):
            held = self._held()
            for lane in lanes:
                entry = _Held(lane=lane, dependency=dependency, name=name, by=by)
                held[entry.key] = entry
            self._write(held)

    def release(self, lanes: tuple[str, ...], dependency: str, name: str) -> None:
        with _locked(self.root):
            held = self._held()
            for lane in lanes:
                held.pop(f"{lane}/{dependency}/{name}", None)
            self._write(held)

    def close(self) -> None:
        with _locked(self.root):
            self._write({})


def stack_lease(root: Path, supervisor_pid: int | None) -> FaultLease:
    """The lease of faults added for good, in the running supervisor's name (its pid, or None
    when no supervisor runs: StackNotRunning)."""
    if supervisor_pid is None:
        raise StackNotRunning("the stack stopped meanwhile; run: doorbuster up")
    return FaultLease.of_stack(root, supervisor_pid)


def _lease_files(root: Path) -> list[_LeaseFile]:
    found = (_LeaseFile.read(path) for path in sorted((root / "leases").glob("*.json")))
    return [lease for lease in found if lease is not None]


@dataclass(frozen=True, kw_only=True)
class OwnedFault:
    """An active fault and who applied it: ``owner`` is None for a foreign one."""

    fault: ActiveFault
    origin: FaultOrigin
    owner: str | None = None
    owner_pid: int | None = None
    held_as: str | None = None  # the name its lease holds it under
    lease: Path | None = None

    @property
    def foreign(self) -> bool:
        return self.origin == "foreign"

    @property
    def applied_by(self) -> str:
        """Who applied it, for a table: ``doorbuster toxic add``, ``outside doorbuster``..."""
        if self.owner is None:
            return "outside doorbuster"
        return self.owner if self.origin == "doorbuster" else f"{self.owner} (gone)"

    def describe(self) -> str:
        return f"{self.fault.describe()} (applied by {self.applied_by})"

    def as_json(self) -> dict[str, Any]:
        return {
            **self.fault.as_json(),
            "origin": self.origin,
            "foreign": self.foreign,
            "owner": self.owner,
            "owner_pid": self.owner_pid,
        }


def _owners(leases: list[_LeaseFile], faults: Iterable[ActiveFault]) -> list[OwnedFault]:
    alive = {lease.path: lease.alive for lease in leases}
    # A fault held by a live owner and by a dead one is the live one's: it is not left over.
    ordered = sorted(leases, key=lambda lease: not alive[lease.path])
    owned: list[OwnedFault] = []
    for fault in faults:
        for lease in ordered:
            held = next((h for h in lease.faults if h.holds(fault)), None)
            if held is not None:
                owned.append(
                    OwnedFault(
                        fault=fault, origin="doorbuster" if alive[lease.path] else "leftover",
                        owner=held.by or lease.owner, owner_pid=lease.pid, held_as=held.name,
                        lease=lease.path,
                    )
                )  # fmt: skip
                break
        else:
            owned.append(OwnedFault(fault=fault, origin="foreign"))
    return owned


def fault_owners(root: Path, faults: Iterable[ActiveFault]) -> list[OwnedFault]:
    """Who applied each of ``faults`` (``Chaos.active()``), from the leases under ``root``:
    doorbuster (a live owner's lease holds it), left over (a gone owner's) or foreign (none)."""
    return _owners(_lease_files(root), faults)


def forget_removed_faults(root: Path, chaos: Chaos) -> None:
    """The stack's lease keeps only the faults still in force (after a remove or a reset, by
    any means), so that a name it held is not taken for doorbuster's when someone else applies
    it later.  Toxiproxy is asked only when there is such a lease."""
    path = root / "leases" / _STACK_LEASE
    if not path.exists():
        return
    active = chaos.active()
    with _locked(root):
        lease = _LeaseFile.read(path)
        if lease is None:
            return
        kept = tuple(held for held in lease.faults if any(held.holds(f) for f in active))
        if kept != lease.faults:
            replace(lease, faults=kept).write()


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


def sweep_leftovers(root: Path, chaos: Chaos) -> list[Leftover]:
    """Remove every fault held by a lease whose process is gone; returns each such fault that
    was still in force, removed or not.  A fault that could not be removed stays in its lease,
    so the next sweep tries again instead of forgetting it."""
    leases = _lease_files(root)
    dead = [lease for lease in leases if not lease.alive]
    if not dead:
        return []
    found: list[Leftover] = []
    failed: set[tuple[Path, str]] = set()
    for owned in _owners(leases, chaos.active()):
        if owned.origin != "leftover" or owned.held_as is None or owned.lease is None:
            continue
        fault, error = owned.fault, None
        try:
            if owned.held_as == "down":
                chaos.set_enabled(fault.dependency, (fault.lane,), enabled=True)
            else:
                chaos.remove(fault.dependency, (fault.lane,), owned.held_as)
        except DoorbusterError as exc:
            error = f"{type(exc).__name__}: {exc}"
            failed.add((owned.lease, f"{fault.lane}/{fault.dependency}/{owned.held_as}"))
        found.append(
            Leftover(
                owner_pid=owned.owner_pid or 0, owner=owned.owner or "?", lane=fault.lane,
                dependency=fault.dependency, name=owned.held_as, removed=error is None, error=error,
            )
        )  # fmt: skip
    with _locked(root):
        for lease in dead:
            if _LeaseFile.read(lease.path) != lease:  # rewritten since: the stack's, by a new stack
                continue
            kept = tuple(held for held in lease.faults if (lease.path, held.key) in failed)
            replace(lease, faults=kept).write()
    return found


def remove_orphan_faults(root: Path, chaos: Chaos) -> list[Leftover]:
    """What every command does first: remove the faults whose owner died (a run killed with
    kill -9; :func:`sweep_leftovers`), and forget those removed without a doorbuster command
    (a reset through Toxiproxy's API) before anything reads who applied what."""
    leftovers = sweep_leftovers(root, chaos)
    forget_removed_faults(root, chaos)
    return leftovers
