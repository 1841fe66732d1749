"""The process that holds one fault for its duration: ``python -m chaosdoorbuster.holder JSON``.

:func:`chaosdoorbuster.actions.add_fault` starts it in a session of its own, so the fault is
removed when its duration is over even if the experiment (the ``chaos`` process) dies first;
SIGTERM or SIGINT remove it early.  It holds the fault in a doorbuster lease in its own name
(owner :data:`OWNER`), as ``doorbuster toxic add --for`` does: ``status`` and ``toxic list``
show the fault as applied by Chaos Toolkit, and if this process is killed with SIGKILL the next
doorbuster command (or :func:`~chaosdoorbuster.actions.remove_faults`) removes what it held.

It writes one JSON line to stdout once the fault is in force (``{"applied": [...]}``) or could
not be applied (``{"error": ..., "kind": ...}``), then closes stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness.faults.chaos import Chaos
from harness.faults.hold import FaultHold
from harness.faults.leases import FaultLease
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model.errors import DoorbusterError
from model.faults import FaultSpec
from model.topology import Topology

__all__ = ["OWNER", "HeldFault", "hold"]

# The owner its leases name: what `status` and `toxic list` show as "applied by".
OWNER = "chaostoolkit (chaosdoorbuster add_fault)"


@dataclass(frozen=True, kw_only=True)
class HeldFault:
    """What the holder is asked to hold: the holder's command line, as JSON."""

    state_dir: Path
    spec: FaultSpec
    duration_s: float

    def to_json(self) -> str:
        return json.dumps(
            {"state_dir": str(self.state_dir), "duration_s": self.duration_s, "fault": self.spec.as_json()}
        )

    @classmethod
    def from_json(cls, text: str) -> HeldFault:
        data = json.loads(text)
        return cls(
            state_dir=Path(data["state_dir"]),
            duration_s=float(data["duration_s"]),
            spec=FaultSpec.from_json(data["fault"]),
        )


class _Stop(Exception):
    """A signal asked the holder to remove its fault now."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
    # Nothing else goes to stdout: the action has read its line and may be gone.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def hold(held: HeldFault, topology: Topology) -> None:
    """Apply the fault under this process's lease, wait out its duration (or a signal), remove it."""
    fault = FaultHold(Chaos(topology), held.spec.validate(topology), FaultLease(held.state_dir, owner=OWNER))
    try:
        applied = fault.apply()
    except DoorbusterError as exc:
        _say({"error": str(exc), "kind": type(exc).__name__})
        return
    _say({"applied": [each.as_json() for each in applied], "pid": os.getpid()})
    try:
        fault.wait(held.duration_s)
    except _Stop:
        pass
    finally:
        # Ignore further signals while removing: a second SIGTERM must not leave it half done.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        fault.release()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the experiment's terminal going away is no reason
    try:
        held = HeldFault.from_json(argv[0])
        topology = Stack(StateDir(held.state_dir)).running_topology()
        hold(held, topology)
    except _Stop:
        _say({"error": "stopped before the fault was applied", "kind": "Stopped"})
        return 1
    except DoorbusterError as exc:
        _say({"error": str(exc), "kind": type(exc).__name__})
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
