"""Bringing a stack up, reading its health, taking it down (``doorbuster up|status|down``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import requests

from harness.binaries import find_binary, find_jars
from harness.faults.chaos import Chaos
from harness.faults.leases import fault_owners
from harness.processes import kill_group, pid_alive, still_ours, stop_group
from harness.stack.state import StateDir
from harness.stack.system_commands import check_programs
from model.errors import ConfigError, DoorbusterError, PortBusy, StackNotRunning, StartFailed
from model.settings import StackSettings
from model.topology import ProcessSpec, Topology

__all__ = ["ProcessHealth", "Stack", "StackStatus"]


@dataclass(frozen=True, kw_only=True)
class ProcessHealth:
    name: str
    kind: str
    address: str
    pid: int | None
    healthy: bool
    restarts: int


@dataclass(frozen=True, kw_only=True)
class StackStatus:
    running: bool
    processes: tuple[ProcessHealth, ...]
    topology: Topology
    proxies: dict[str, Any]
    faults: tuple[dict[str, Any], ...]

    @property
    def healthy(self) -> bool:
        return self.running and all(p.healthy for p in self.processes)

    def as_json(self) -> dict[str, Any]:
        topo = self.topology
        return {
            "running": self.running,
            "healthy": self.healthy,
            "system": topo.system.name if topo.system is not None else "checkout",
            "broker": (
                {"name": topo.settings.broker, "address": topo.broker.address} if topo.has_broker else None
            ),
            "lanes": {
                lane: {"url": topo.order_service(lane).url, "request": topo.lane_url(lane)}
                for lane in topo.lanes
            },
            "prometheus": {"url": topo.prometheus.url},
            "live": {"url": f"{topo.endpoint('live').url}/"},
            "toxiproxy": {
                "url": topo.toxiproxy.url,
                "proxies": [
                    {
                        "name": p.name,
                        "lane": p.lane,
                        "dependency": p.dependency,
                        "listen": p.listen,
                        "upstream": p.upstream,
                        "enabled": self.proxies.get(p.name, {}).get("enabled"),
                        "toxics": self.proxies.get(p.name, {}).get("toxics", []),
                    }
                    for p in topo.proxies
                ],
            },
            "processes": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "address": p.address,
                    "pid": p.pid,
                    "healthy": p.healthy,
                    "restarts": p.restarts,
                }
                for p in self.processes
            ],
            "faults": list(self.faults),
            "time_scale": topo.settings.time_scale,
        }


def probe(spec: ProcessSpec, timeout_s: float = 0.5) -> bool:
    """Is the process answering?  HTTP ``/health`` where it has one, else a TCP connect."""
    if spec.kind == "toxiproxy":
        try:
            return requests.get(f"{spec.endpoint.url}/version", timeout=timeout_s).ok
        except requests.RequestException:
            return False
    if spec.http_health:
        try:
            return requests.get(f"{spec.endpoint.url}{spec.health_path}", timeout=timeout_s).ok
        except requests.RequestException:
            return False
    try:
        with socket.create_connection((spec.endpoint.host, spec.endpoint.port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ready(spec: ProcessSpec, timeout_s: float = 0.5) -> bool:
    """Is it answering, and has it connected once to what it needs (a target's ``ready``)?
    ``up`` waits for this, so nothing begins against an async lane still connecting."""
    if spec.kind not in ("order", "worker"):
        return probe(spec, timeout_s)
    try:
        answer = requests.get(f"{spec.endpoint.url}{spec.health_path}", timeout=timeout_s)
        return answer.ok and bool(answer.json().get("ready", True))
    except (requests.RequestException, ValueError, AttributeError):
        return False


class Stack:
    def __init__(self, state: StateDir) -> None:
        self.state = state

    # -- what is running ---------------------------------------------------------------
    def supervisor_pid(self) -> int | None:
        record = self.state.read_supervisor()
        if record is None:
            return None
        pid = int(record.get("pid", 0))
        return pid if still_ours(pid, record.get("start")) else None

    def topology(self) -> Topology:
        try:
            return Topology.from_json(self.state.stack_file.read_text())
        except FileNotFoundError:
            raise StackNotRunning(f"no stack in {self.state.root}; start one with: doorbuster up") from None
        except (ValueError, DoorbusterError) as exc:  # pydantic's ValidationError is a ValueError
            first = " ".join(str(exc).strip().splitlines()[0:3])
            raise StackNotRunning(
                f"the stack file {self.state.stack_file} can not be read (written by another "
                f"version of doorbuster?): {first}; stop that stack with: doorbuster down"
            ) from None

    def running_topology(self) -> Topology:
        if self.supervisor_pid() is None:
            raise StackNotRunning(f"no stack is running (state in {self.state.root}); run: doorbuster up")
        return self.topology()

    # -- up ----------------------------------------------------------------------------
    def up(self, settings: StackSettings, *, timeout_s: float = 90.0) -> Topology:
        """Start everything and wait until healthy; harmless when the same stack runs."""
        topology = Topology.from_settings(settings)
        if self.supervisor_pid() is not None:
            running = self.topology()
            if running.settings != settings:
                raise ConfigError(
                    "a stack with other settings is already running; stop it first with: doorbuster down"
                )
            self.wait_healthy(running, timeout_s=timeout_s)
            return running
        self._kill_leftovers()
        brokers = _BROKER_BINARIES[settings.broker] if topology.has_broker else ()
        for name in ("toxiproxy-server", "prometheus", *brokers):
            find_binary(name)
        check_programs(topology, self.state)
        if topology.has_broker and settings.broker in ("kafka", "sqs"):
            find_jars("kafka" if settings.broker == "kafka" else "elasticmq")
        busy = _busy_port(topology)
        if busy is not None:
            name, port = busy
            raise PortBusy(
                f"port {topology.host}:{port} ({name}) is in use by another program; "
                "stop it, or move doorbuster with --base-port"
                + (" / --toxiproxy-port" if name == "toxiproxy" else "")
            )
        self.state.prepare()
        self.state.stack_file.write_text(topology.to_json())
        log = open(self.state.log_path("supervisor"), "ab")  # noqa: SIM115 - handed to the child
        with log:
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "harness.stack.supervisor", "--state-dir", str(self.state.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            self.wait_healthy(topology, timeout_s=timeout_s, supervisor=supervisor)
        except StartFailed:
            self.down()
            # A supervisor that had not written its record yet is not one ``down`` can find.
            if supervisor.poll() is None:
                stop_group(supervisor)
                self._kill_leftovers()
            raise
        return topology

    def wait_healthy(
        self, topology: Topology, *, timeout_s: float, supervisor: subprocess.Popen[bytes] | None = None
    ) -> None:
        """Until every process answers and every proxy exists.  ``supervisor``: the one ``up``
        just started, watched itself (a cold machine may take seconds to start Python, before it
        writes its record); else the one the state directory records."""
        started = time.monotonic()
        pending = list(topology.processes)
        chaos = Chaos(topology)
        while True:
            pending = [spec for spec in pending if not ready(spec)]
            if not pending and len(_safe_proxies(chaos)) >= len(topology.proxies):
                return
            waited = time.monotonic() - started
            if supervisor is not None:
                gone = supervisor.poll() is not None
            else:
                gone = waited > 5.0 and self.supervisor_pid() is None
            if gone:
                raise StartFailed(
                    "the supervisor stopped before the stack was healthy:\n"
                    + self.state.log_tail("supervisor")
                    + "".join(
                        f"\n--- last lines of {self.state.log_path(spec.name)} ---\n"
                        f"{self.state.log_tail(spec.name)}"
                        for spec in pending[:1]
                    )
                )
            if waited > timeout_s:
                names = ", ".join(spec.name for spec in pending) or "toxiproxy proxies"
                first = pending[0].name if pending else "toxiproxy"
                raise StartFailed(
                    f"not healthy after {timeout_s:.0f}s: {names}\n"
                    f"--- last lines of {self.state.log_path(first)} ---\n"
                    f"{self.state.log_tail(first)}"
                )
            time.sleep(0.2)

    # -- status ------------------------------------------------------------------------
    def status(self) -> StackStatus:
        topology = self.topology()
        record = self.state.read_supervisor() or {}
        running = self.supervisor_pid() is not None
        procs = record.get("processes", {})
        health = tuple(
            ProcessHealth(
                name=spec.name,
                kind=spec.kind,
                address=spec.endpoint.address,
                pid=procs.get(spec.name, {}).get("pid"),
                healthy=running and probe(spec),
                restarts=int(procs.get(spec.name, {}).get("restarts", 0)),
            )
            for spec in topology.processes
        )
        chaos = Chaos(topology)
        proxies = _safe_proxies(chaos)
        faults: tuple[dict[str, Any], ...] = ()
        if running and proxies:
            with contextlib.suppress(DoorbusterError):
                faults = tuple(owned.as_json() for owned in fault_owners(self.state.root, chaos.active()))
        return StackStatus(
            running=running, processes=health, topology=topology, proxies=proxies, faults=faults
        )

    # -- down --------------------------------------------------------------------------
    def down(self, *, timeout_s: float = 30.0) -> bool:
        """Remove every fault, stop every process; True if anything was running."""
        pid = self.supervisor_pid()
        stopped_load = self._stop_load()
        if pid is not None:
            with contextlib.suppress(DoorbusterError):
                Chaos(self.topology()).reset()
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                kill_group(pid, signal.SIGKILL)
        killed = self._kill_leftovers()
        if pid is not None or killed:
            # A process can look gone (a zombie) a moment before the kernel has closed its
            # sockets; ``down`` returns once the stack's ports are free, so ``up`` can follow.
            with contextlib.suppress(DoorbusterError):
                topology = self.topology()
                deadline = time.monotonic() + 10
                while _busy_port(topology) is not None and time.monotonic() < deadline:
                    time.sleep(0.1)
        return pid is not None or killed or stopped_load

    def _stop_load(self) -> bool:
        """Stop load generators a crashed run left, before the faults are reset under them."""
        found = False
        for pid, start in self.state.read_load_pids():
            if still_ours(pid, start) and kill_group(pid, signal.SIGTERM):
                found = True
                deadline = time.monotonic() + 10
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                kill_group(pid, signal.SIGKILL)
        self.state.write_load_pids([])
        return found

    def _kill_leftovers(self) -> bool:
        """Kill what a supervisor or a run that died without cleaning up left running."""
        found = self._stop_load()
        record = self.state.read_supervisor()
        if record is None:
            return found
        # Only processes that still are the ones recorded: a pid reused since (after a reboot,
        # say) belongs to someone else.
        for info in record.get("processes", {}).values():
            child = int(info.get("pid", 0))
            if still_ours(child, info.get("start")) and kill_group(child, signal.SIGKILL):
                found = True
        supervisor = int(record.get("pid", 0))
        if still_ours(supervisor, record.get("start")):
            kill_group(supervisor, signal.SIGKILL)
            found = True
        self.state.clear_supervisor()
        return found


# The broker's own programs, beside the Toxiproxy server and Prometheus every stack runs.
_BROKER_BINARIES: dict[str, tuple[str, ...]] = {
    "rabbitmq": ("rabbitmq-server",),
    "redis-streams": ("redis-server",),
    "redis-pubsub": ("redis-server",),
    "kafka": ("java",),
    "sqs": ("java",),
}


def _busy_port(topology: Topology) -> tuple[str, int] | None:
    """The first of the topology's ports that something listens on, as (name, port)."""
    for port, name in sorted({port: name for name, port in topology.ports.items()}.items()):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers do: a port left in TIME_WAIT by a stack just stopped is free,
            # only a listener is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((topology.host, port))
            except OSError:
                return name, port
    return None


def _safe_proxies(chaos: Chaos) -> dict[str, Any]:
    try:
        return chaos.proxies()
    except DoorbusterError:
        return {}
