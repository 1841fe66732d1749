"""The supervisor: one detached process that owns every server of a running stack.

``doorbuster up`` starts it (``python -m harness.stack.supervisor --state-dir DIR``) and returns
once everything is healthy.  It starts Toxiproxy first and creates the proxies, then the
broker and the target processes; it restarts any child that dies (putting Toxiproxy's proxies
back after Toxiproxy itself restarted); on SIGTERM it stops them all, newest first.

Every server of the stack runs at niceness ``STACK_NICENESS`` above the harness's own: on a
machine the load generator shares with the system it loads, the kernel then runs the
generator's timers first, so an arrival is sent when it is due and the system, not its
scheduling behind a busy stack, is what a verdict measures; the system still gets every cycle
the generator does not use (docs/running/generator.md, "Sharing a machine").

Each child runs in its own process group, so a shell wrapper and what it started (RabbitMQ's
script and its Erlang VM) stop together.  Their pids are recorded in the state directory, so
``doorbuster down`` can clean up even after the supervisor itself was killed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from harness.binaries import find_binary
from harness.faults.chaos import Chaos
from harness.metrics.prometheus import write_prometheus_config
from harness.processes import kill_group, process_record
from harness.stack.control import probe
from harness.stack.java_brokers import elasticmq_command, kafka_command
from harness.stack.state import StateDir
from harness.stack.system_commands import setup_commands, start_command
from model import metric_names as names
from model.errors import DoorbusterError
from model.target_config import TARGET_CONFIG_ENV, resolve_target_config
from model.topology import ProcessSpec, Topology

__all__ = ["Supervisor", "command_for"]

# Niceness only matters under contention; 5 of 19 puts the generator's few percent of a core
# first without starving the stack when other work on the machine runs at 0.
STACK_NICENESS = 5

log = logging.getLogger("doorbuster.supervisor")

_RESTART_LIMIT = 10  # restarts within _RESTART_WINDOW_S before a child is given up on
_RESTART_WINDOW_S = 60.0
# A system's service starts once the services listed before it answer; this long at most.
_READY_BEFORE_START_S = 120.0
_SETUP_TIMEOUT_S = 300.0


def command_for(spec: ProcessSpec, topology: Topology, state: StateDir) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that start ``spec``."""
    env: dict[str, str] = {}
    if spec.kind == "toxiproxy":
        cmd = [
            str(find_binary("toxiproxy-server")),
            "-host", spec.endpoint.host,
            "-port", str(spec.endpoint.port),
            "-proxy-metrics",
            "-runtime-metrics",
        ]  # fmt: skip
    elif spec.kind == "prometheus":
        config = write_prometheus_config(topology, state.root)
        cmd = [
            str(find_binary("prometheus")),
            f"--config.file={config}",
            f"--storage.tsdb.path={state.root / 'prometheus'}",
            f"--web.listen-address={spec.endpoint.address}",
            "--storage.tsdb.retention.time=7d",
            "--web.enable-lifecycle",
        ]
    elif spec.kind == "broker" and topology.settings.broker.startswith("redis"):
        data = state.root / "redis"
        data.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(find_binary("redis-server")),
            "--bind", spec.endpoint.host, "--port", str(spec.endpoint.port),
            "--dir", str(data), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--protected-mode", "yes", "--daemonize", "no",
        ]  # fmt: skip
    elif spec.kind == "broker" and topology.settings.broker == "kafka":
        cmd, env = kafka_command(topology, state)
    elif spec.kind == "broker" and topology.settings.broker == "sqs":
        cmd, env = elasticmq_command(topology, state)
    elif spec.kind == "broker":
        cmd = [str(find_binary("rabbitmq-server"))]
        env = rabbitmq_environment(topology, state)
    elif spec.kind == "service" and spec.service is not None:
        cmd, env = start_command(spec.service, topology, state)
    elif spec.kind == "live":
        cmd = [sys.executable, "-m", "harness.live.server", "--state-dir", str(state.root)]
    else:
        # A target is told everything it needs, resolved: it never reads the stack file.
        target = resolve_target_config(topology, spec, data_dir=state.data_dir)
        cmd = [sys.executable, "-m", "targets"]
        env = {TARGET_CONFIG_ENV: target.model_dump_json()}
    return cmd, env


def rabbitmq_environment(topology: Topology, state: StateDir) -> dict[str, str]:
    """Run RabbitMQ as a private node: its own data, config, ports, cookie, all on loopback."""
    home = state.root / "rabbitmq"
    (home / "mnesia").mkdir(parents=True, exist_ok=True)
    (home / "log").mkdir(parents=True, exist_ok=True)
    port = topology.ports["broker"]
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {topology.host}:{port}\n"
        "loopback_users.guest = true\n"
        "log.console = true\n"
        "log.file = false\n"
    )
    (home / "enabled_plugins").write_text("[].\n")
    return {
        "HOME": str(home),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_NODENAME": f"doorbuster{port}@localhost",
        "RABBITMQ_DIST_PORT": str(topology.ports["broker-dist"]),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }


class FaultCollector:
    """``doorbuster_toxic_active``: one series per fault in force, read from Toxiproxy and the services
    at every scrape, so faults added from the CLI, a run or by hand all show."""

    def __init__(self, topology: Topology) -> None:
        self.chaos = Chaos(topology, timeout_s=0.5)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            names.TOXIC_ACTIVE, "Faults in force (1 per fault).", labels=["lane", "dependency", "type"]
        )
        try:
            faults = self.chaos.active()
        except DoorbusterError:
            faults = []
        counts: dict[tuple[str, str, str], int] = {}
        for fault in faults:
            key = (fault.lane, fault.dependency, fault.type)
            counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            gauge.add_metric(list(key), n)
        yield gauge


@dataclass
class Child:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]
    log_file: IO[bytes]
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.topology = Topology.from_json(state.stack_file.read_text())
        self.children: dict[str, Child] = {}
        self.given_up: set[str] = set()
        self._stopping = False

    def start(self, spec: ProcessSpec) -> Child:
        cmd, extra_env = command_for(spec, self.topology, self.state)
        log_file = open(self.state.log_path(spec.name), "ab")  # noqa: SIM115 - the child owns it
        if spec.kind == "service":
            self._prepare_service(spec, log_file, {**os.environ, **extra_env})
        log_file.write(f"\n--- {time.strftime('%F %T')} starting: {' '.join(cmd)}\n".encode())
        log_file.flush()
        try:
            popen = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **extra_env},
                start_new_session=True,
                cwd=self.state.root,
            )
        except OSError as exc:  # a program removed since `up` checked it
            log_file.close()
            raise DoorbusterError(f"could not start {spec.name}: {cmd[0]}: {exc.strerror}") from exc
        child = Child(spec=spec, popen=popen, log_file=log_file)
        previous = self.children.get(spec.name)
        if previous is not None:
            child.restarts = previous.restarts
        self.children[spec.name] = child
        log.info("started %s (pid %d)", spec.name, popen.pid)
        return child

    def _prepare_service(self, spec: ProcessSpec, log_file: IO[bytes], env: dict[str, str]) -> None:
        """Wait until the services listed before this one answer, then run its setup commands
        (argument lists, never a shell); a failed step is logged and the start goes on, so the
        service's own log says what it lacks and the supervisor's restarts retry the step."""
        earlier: list[ProcessSpec] = []
        for other in self.topology.processes:
            if other.name == spec.name:
                break
            if other.kind in ("service", "external"):
                earlier.append(other)
        deadline = time.monotonic() + _READY_BEFORE_START_S
        while not self._stopping and not all(probe(other) for other in earlier):
            if time.monotonic() > deadline:
                log.warning("%s: starting although %s do not answer", spec.name, [p.name for p in earlier])
                break
            time.sleep(0.2)
        steps = setup_commands(spec.service, self.topology, self.state) if spec.service is not None else []
        for cmd in steps:
            log_file.write(f"\n--- {time.strftime('%F %T')} setup: {' '.join(cmd)}\n".encode())
            log_file.flush()
            try:
                done = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    env=env, cwd=self.state.root, timeout=_SETUP_TIMEOUT_S, check=False,
                )  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.error("%s: setup step %s failed: %s", spec.name, cmd[0], exc)
                return
            if done.returncode != 0:
                log.error("%s: setup step %s exited with %d", spec.name, cmd[0], done.returncode)
                return

    def write_state(self) -> None:
        self.state.write_supervisor(
            {
                **process_record(os.getpid()),
                "started_at": self._started_at,
                "processes": {
                    name: {
                        **process_record(child.popen.pid),
                        "restarts": len(child.restarts),
                        "given_up": name in self.given_up,
                        "log": str(self.state.log_path(name)),
                    }
                    for name, child in self.children.items()
                },
            }
        )

    def wait_toxiproxy(self, timeout_s: float = 20.0) -> Chaos:
        chaos = Chaos(self.topology)
        deadline = time.monotonic() + timeout_s
        while not chaos.ping():
            if time.monotonic() > deadline or self.children["toxiproxy"].popen.poll() is not None:
                raise DoorbusterError("toxiproxy did not start; see its log")
            time.sleep(0.05)
        chaos.ensure_proxies()
        return chaos

    def run(self) -> int:
        self._started_at = time.time()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._request_stop)
        specs = self.topology.processes
        try:
            self.start(specs[0])  # Toxiproxy first: every other hop goes through it
            self.write_state()
            self.wait_toxiproxy()
            registry = CollectorRegistry()
            registry.register(FaultCollector(self.topology))
            endpoint = self.topology.endpoint("supervisor")
            start_http_server(endpoint.port, addr=endpoint.host, registry=registry)
            for spec in specs[1:]:
                if spec.kind != "external":  # a service the user runs; only watched
                    self.start(spec)
            self.write_state()
            while not self._stopping:
                self._reap()
                time.sleep(0.25)
        except DoorbusterError as exc:
            log.error("%s", exc)
            return 3
        finally:
            self.stop_all()
        return 0

    def _reap(self) -> None:
        for name, child in list(self.children.items()):
            code = child.popen.poll()
            if code is None or name in self.given_up or self._stopping:
                continue
            log.warning("%s exited with %s; restarting", name, code)
            kill_group(child.popen.pid, signal.SIGKILL)  # whatever it left behind
            child.log_file.close()
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < _RESTART_WINDOW_S] + [now]
            if len(child.restarts) > _RESTART_LIMIT:
                log.error(
                    "%s restarted %d times in %ds; giving up",
                    name,
                    _RESTART_LIMIT,
                    _RESTART_WINDOW_S,
                )
                self.given_up.add(name)
            else:
                self.start(child.spec)
                if child.spec.kind == "toxiproxy":
                    try:
                        self.wait_toxiproxy()
                        log.info("toxiproxy is back; proxies recreated")
                    except DoorbusterError as exc:
                        log.error("%s", exc)
            self.write_state()

    def _request_stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def stop_all(self, timeout_s: float = 15.0) -> None:
        self._stopping = True
        for name in reversed(list(self.children)):
            child = self.children[name]
            if child.popen.poll() is None:
                kill_group(child.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.popen.wait(remaining)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.spec.name)
            kill_group(child.popen.pid, signal.SIGKILL)
            child.popen.poll()
            child.log_file.close()
        self._stop_epmd()
        self.state.clear_supervisor()
        log.info("stopped")

    def _stop_epmd(self) -> None:
        """RabbitMQ starts Erlang's port mapper as a daemon of its own; stop it too, unless
        another Erlang node on this machine still uses it (then epmd refuses, as it should)."""
        if "broker" not in self.children or self.topology.settings.broker != "rabbitmq":
            return
        epmd = shutil.which("epmd") or next(
            iter(sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None
        )
        if epmd is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([str(epmd), "-kill"], capture_output=True, timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.stack.supervisor")
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor %(levelname)s %(message)s")
    state = StateDir(Path(args.state_dir))
    os.nice(STACK_NICENESS)  # its children inherit it
    return Supervisor(state).run()


if __name__ == "__main__":
    sys.exit(main())
