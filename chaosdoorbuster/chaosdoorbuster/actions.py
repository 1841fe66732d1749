"""Chaos Toolkit actions: add a fault to a running doorbuster stack for a duration, remove them.

A fault is applied by a holder process (:mod:`chaosdoorbuster.holder`) through doorbuster's own
fault code and leases, so it is doorbuster's fault, shown by ``doorbuster status`` and
``doorbuster toxic list`` as applied by Chaos Toolkit, and removed when its duration is over
whatever becomes of the experiment.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed, InvalidActivity

from chaosdoorbuster.arguments import doorbuster_errors, duration_arg, fault_spec, state_dir
from chaosdoorbuster.holder import OWNER, HeldFault
from chaosdoorbuster.stack import running_stack
from harness.faults.chaos import Chaos
from harness.faults.leases import fault_owners, forget_removed_faults, sweep_leftovers
from harness.processes import pid_alive, start_ticks
from model.topology import Topology

__all__ = ["add_fault", "remove_faults"]

# A fault outlives the experiment that added it by at most this long.
MOST_DURATION_S = 3600.0
# How long the holder may take to apply the fault (every Toxiproxy call is bounded by 5 s).
APPLY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
# The holder runs as ``python -m chaosdoorbuster.holder`` from wherever ``chaos`` was started,
# installed or not: it imports this package from the folder of the extension's distribution,
# and doorbuster's packages from the project's root above it (from wheels, both are installed).
EXTENSION_ROOT = Path(__file__).resolve().parents[1]
IMPORT_ROOTS = (EXTENSION_ROOT, EXTENSION_ROOT.parent)


def add_fault(
    dependency: str,
    type: str,
    duration: float | str,
    lanes: str | list[str] = "both",
    attributes: dict[str, float] | None = None,
    toxicity: float = 1.0,
    stream: str = "downstream",
    name: str | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add a fault (a Toxiproxy toxic, or http_error / http_delay) to ``dependency`` on
    ``lanes`` for ``duration`` (``30``, ``"30s"``, ``"2m"``); returns at once, with the faults
    as applied, while a holder process keeps it in force and removes it when the duration is
    over, even if the experiment has died by then.

    Arguments as in ``doorbuster toxic add DEPENDENCY TYPE --lane LANES --attr K=V --for D``:
    ``{"dependency": "payment", "type": "latency", "duration": "20s", "lanes": "both",
    "attributes": {"latency": 2000}}``."""
    spec = fault_spec(
        dependency=dependency, type=type, lanes=lanes, attributes=attributes, toxicity=toxicity,
        stream=stream, name=name,
    )  # fmt: skip
    seconds = duration_arg("duration", duration, most_s=MOST_DURATION_S)
    root = state_dir(configuration)
    with doorbuster_errors("add_fault"):
        topology = running_stack(root)
        spec.validate(topology)
    return _start_holder(HeldFault(state_dir=root, spec=spec, duration_s=seconds))


def _start_holder(held: HeldFault, *, timeout_s: float = APPLY_TIMEOUT_S) -> dict[str, Any]:
    """Start the holder in a session of its own and wait for its word that the fault is in force."""
    log = held.state_dir / "logs" / "chaostoolkit-holder.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(filter(None, [*map(str, IMPORT_ROOTS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    with open(log, "ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaosdoorbuster.holder", held.to_json()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env,
            start_new_session=True,
        )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()
    if not line:
        if proc.poll() is None:
            proc.terminate()  # it removes whatever it applied
        raise ActivityFailed(
            f"add_fault: the fault holder said nothing in {timeout_s:g}s (its log: {log}); "
            "whatever it applied is removed when it stops"
        )
    try:
        answer: dict[str, Any] = json.loads(line)
    except ValueError:
        raise ActivityFailed(f"add_fault: the fault holder said {line[:200]!r} (its log: {log})") from None
    if "error" in answer:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout_s)
        failure = InvalidActivity if answer.get("kind") == "ConfigError" else ActivityFailed
        raise failure(f"add_fault: {answer.get('kind')}: {answer['error']}")
    return {
        "applied": answer["applied"],
        "holder_pid": proc.pid,
        "duration_s": held.duration_s,
        "until": time.time() + held.duration_s,
        "owner": OWNER,
    }


def remove_faults(
    dependency: str | None = None,
    name: str | None = None,
    configuration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Remove the faults this extension added (for a rollback): all of them, or those on
    ``dependency`` and/or of that toxic ``name`` or fault type.  Each holder is stopped and
    removes what it holds (every lane it was given); a fault doorbuster's own commands or
    anyone else applied is left alone.  Returns what was removed."""
    for key, value in (("dependency", dependency), ("name", name)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidActivity(f"remove_faults: {key}: expected a name or null, got {value!r}")
    root = state_dir(configuration)
    with doorbuster_errors("remove_faults"):
        return _remove_held(root, running_stack(root), dependency=dependency, name=name)


def _remove_held(
    root: Path,
    topology: Topology,
    *,
    dependency: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    chaos = Chaos(topology)
    ours = [
        owned
        for owned in fault_owners(root, chaos.active())
        if owned.owner == OWNER and owned.origin == "doorbuster" and owned.owner_pid is not None
        and (dependency is None or owned.fault.dependency == dependency)
        and (name is None or name in (owned.fault.name, owned.fault.type))
    ]  # fmt: skip
    holders = sorted({owned.owner_pid for owned in ours if owned.owner_pid is not None})
    for pid in holders:
        _terminate(pid)
    # A holder that did not get to remove its fault is gone now: the sweep removes what it held.
    sweep_leftovers(root, chaos)
    forget_removed_faults(root, chaos)
    now = fault_owners(root, chaos.active())
    left = [f.describe() for f in now if f.owner == OWNER and f.owner_pid in holders]
    if left:
        raise ActivityFailed(f"remove_faults: still in force: {'; '.join(left)}")
    return {"removed": [owned.fault.as_json() for owned in ours], "holders": holders}


def _terminate(pid: int) -> None:
    """SIGTERM a holder and wait for it to remove its fault; SIGKILL it if it will not stop."""
    start = start_ticks(pid)
    if start is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not pid_alive(pid) or start_ticks(pid) != start:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
