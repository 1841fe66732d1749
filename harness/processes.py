"""Processes the harness started, told apart from whatever later took their pid.

A pid written to a state file (the supervisor's record, a run's load generators, a fault
lease) may belong to another process by the time it is read: after a reboot, or once the
kernel has reused it. So each is written with its start time (in clock ticks since boot, from
``/proc/<pid>/stat``), and a pid is taken to be ours, and signalled, only while the process
that holds it started at that same tick.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

__all__ = ["kill_group", "pid_alive", "process_record", "start_ticks", "still_ours", "stop_group"]


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a live process (a zombie is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive; /proc tells.  A leader thread shows "Z" as soon as it has exited,
    # while the process' other threads (and its open sockets) may live a moment longer.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(") ", 1)[1][0] != "Z":
                return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except FileNotFoundError:  # reaped meanwhile
        return False
    except (OSError, IndexError):
        return True


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The command name, in parentheses, may hold spaces: count fields after its end.
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_record(pid: int) -> dict[str, Any]:
    """``{"pid", "start"}`` for a state file."""
    return {"pid": pid, "start": start_ticks(pid)}


def still_ours(pid: int, start: Any) -> bool:
    """Is ``pid`` alive and still the process that started at tick ``start``?  A record with
    no start time is not trusted: nothing is signalled on its word."""
    return pid > 0 and isinstance(start, int) and pid_alive(pid) and start_ticks(pid) == start


def kill_group(pid: int, sig: int) -> bool:
    """Signal ``pid``'s whole process group; False when it is already gone."""
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM ``proc``'s process group, and SIGKILL it if ``proc`` is not gone in ``timeout_s``."""
    kill_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
