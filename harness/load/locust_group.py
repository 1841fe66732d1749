"""Locust's process group: its master and workers as subprocesses, their pids in the state dir.

This is the one harness module that starts Locust (it patches its process with gevent when
imported, so it runs in its own). Each process gets its own session, so stopping one stops
its children; and SIGTERM when the harness dies, even by kill -9, so Locust quits (removing
its faults) instead of running on as an orphan. ``doorbuster down`` stops the pids recorded.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from harness.binaries import PROJECT_ROOT
from harness.records.run_dir import RunDir
from harness.stack.state import StateDir
from model.errors import EnvironmentProblem
from model.topology import Topology

__all__ = ["LOCUSTFILE", "LocustGroup", "locust_commands", "locust_env"]

LOCUSTFILE = PROJECT_ROOT / "locustfiles" / "shoppers.py"
# SIGTERM is given this long to stop every process before SIGKILL.
_STOP_TIMEOUT_S = 20
# A master's exit that is not a failure: done, done with failed requests, SIGINT, SIGTERM.
_EXPECTED_EXITS = (0, 1, -2, -15)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the harness dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def locust_commands(topology: Topology, run_dir: RunDir, workers: int) -> list[list[str]]:
    """The master's command line, then each worker's (none with ``workers`` 0)."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
    master = [
        *base, "--headless", "--only-summary",
        "--csv", str(run_dir.locust_csv_prefix), "--html", str(run_dir.locust_html),
    ]  # fmt: skip
    if workers <= 0:
        return [master]
    port = str(topology.ports["locust-master"])
    master += [
        "--master", "--expect-workers", str(workers),
        "--master-bind-host", topology.host, "--master-bind-port", port,
    ]  # fmt: skip
    worker = [*base, "--worker", "--master-host", topology.host, "--master-port", port]
    return [master] + [worker] * workers


def locust_env(
    run_dir: RunDir,
    state_dir: Path,
    *,
    workers: int,
    targets: dict[str, str] | None,
    allow_hosts: tuple[str, ...],
) -> dict[str, str]:
    """The environment the locustfile reads its run from."""
    env = {
        **os.environ,
        "DOORBUSTER_SCENARIO": str(run_dir.scenario),
        "DOORBUSTER_RUN_DIR": str(run_dir.root),
        "DOORBUSTER_STATE_DIR": str(state_dir),
        "DOORBUSTER_WORKERS": str(max(1, workers)),
        "PYTHONUNBUFFERED": "1",
    }
    if targets:
        env["DOORBUSTER_TARGETS"] = json.dumps(targets)
        env["DOORBUSTER_ALLOW_HOSTS"] = ",".join(allow_hosts)
    return env


class LocustGroup:
    """Locust's master and workers for one run; a context manager that stops them all.

    ``start()`` starts every process and records their pids; leaving the ``with`` block
    stops them (SIGTERM to each session, SIGKILL after a bounded wait) and clears the pids,
    on an error or Ctrl-C too.
    """

    def __init__(self, commands: list[list[str]], env: dict[str, str], log: Path, state: StateDir) -> None:
        self.commands = commands
        self.env = env
        self.log_path = log
        self.state = state
        self.procs: list[subprocess.Popen[bytes]] = []
        self._log: IO[bytes] | None = None

    def __enter__(self) -> LocustGroup:
        self._log = open(self.log_path, "ab")  # closed on leaving the block
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
            self.state.write_load_pids([])
        finally:
            if self._log is not None:
                self._log.close()

    def start(self) -> None:
        assert self._log is not None, "start() inside the with block"
        for cmd in self.commands:
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    env=self.env,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            )
        self.state.write_load_pids([p.pid for p in self.procs])

    def running(self) -> bool:
        """Whether the master still runs (the run's load ends with it)."""
        return bool(self.procs) and self.procs[0].poll() is None

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + _STOP_TIMEOUT_S
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def check_exit(self) -> None:
        """EnvironmentProblem, with the log's tail, if the master exited as it never should."""
        if self.procs and self.procs[0].returncode not in _EXPECTED_EXITS:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise EnvironmentProblem(f"Locust failed (exit {self.procs[0].returncode}):\n{tail}")
