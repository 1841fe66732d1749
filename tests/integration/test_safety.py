"""Every socket that the stack and a running load test open is bound to loopback.

On each broker's stack (conftest's ``broker_stack``, one a broker, shared with the other
modules) a short real ``doorbuster run`` with one Locust worker is started. During the load, every process of the
stack's process groups, of the run's and of Locust's, and Erlang's port mapper (``epmd``
daemonises out of RabbitMQ's group) is read with psutil: every TCP socket (listening or
connected) and every bound UDP socket must have a local address in 127.0.0.0/8 or ::1, and the
listeners each process is meant to have must be among them (the live view's page, a process of
the stack, included). Plain ``locust -f`` is checked the same way: its web UI and master bind
127.0.0.1 unless the user says otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from harness.binaries import PROJECT_ROOT
from harness.processes import stop_group
from harness.records.run_dir import RunDir
from harness.stack.control import Stack
from model.settings import PortSettings, StackSettings
from model.topology import Topology
from tests.integration.conftest import RunningStack

EPMD_PORT = 4369


@dataclass(frozen=True, kw_only=True)
class BoundSocket:
    process: str
    pid: int
    proto: str  # tcp or udp
    host: str
    port: int
    listening: bool  # a TCP listener or any bound UDP socket

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def on_loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        state = "listen" if self.listening else "conn"
        return f"{self.process}[{self.pid}] {self.proto} {state} {self.address}"


def bound_sockets(processes: dict[int, str]) -> list[BoundSocket]:
    """Every IPv4/IPv6 socket with a local port of each process (pid -> label), from the
    process's own fd table and network namespace."""
    found = []
    for pid, label in sorted(processes.items()):
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue  # a short-lived helper (RabbitMQ's scripts start a few) that has exited
        for conn in connections:
            if not conn.laddr or conn.laddr.port == 0:
                continue  # created but never bound
            udp = conn.type == socket.SOCK_DGRAM
            host = ipaddress.ip_address(conn.laddr.ip)
            if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
                host = host.ipv4_mapped  # Java's dual-stack sockets: ::ffff:127.0.0.1 is 127.0.0.1
            found.append(
                BoundSocket(
                    process=label,
                    pid=pid,
                    proto="udp" if udp else "tcp",
                    host=str(host),
                    port=conn.laddr.port,
                    listening=udp or conn.status == psutil.CONN_LISTEN,
                )
            )
    return found


def _groups_and_descendants(leaders: dict[int, str]) -> dict[int, str]:
    """Each leader's whole process group and every descendant, labelled with the leader's name."""
    labels: dict[int, str] = {}
    groups: dict[int, str] = {}
    for pid, label in leaders.items():
        try:
            groups.setdefault(os.getpgid(pid), label)
        except ProcessLookupError:
            continue
        labels[pid] = label
    for proc in psutil.process_iter():
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            continue
        if pgid in groups:
            labels.setdefault(proc.pid, groups[pgid])
    for pid, label in list(labels.items()):
        try:
            for child in psutil.Process(pid).children(recursive=True):
                labels.setdefault(child.pid, label)
        except psutil.NoSuchProcess:
            continue
    return labels


def _epmd_of_this_network() -> dict[int, str]:
    """Erlang's port mapper daemonises (leaving RabbitMQ's process group): it is found by name,
    among the processes in this test's network namespace."""
    here = os.readlink("/proc/self/ns/net")
    found = {}
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != "epmd":
            continue
        try:
            if os.readlink(f"/proc/{proc.pid}/ns/net") == here:
                found[proc.pid] = "epmd"
        except OSError:
            continue
    return found


def stack_processes(stack: Stack) -> dict[int, str]:
    record = stack.state.read_supervisor()
    assert record is not None, "the stack is not running"
    leaders = {int(record["pid"]): "supervisor"}
    leaders.update({int(p["pid"]): name for name, p in record["processes"].items()})
    return _groups_and_descendants(leaders)


def _assert_all_on_loopback(sockets: list[BoundSocket]) -> None:
    assert sockets, "no socket found: nothing was checked"
    exposed = [str(s) for s in sockets if not s.on_loopback]
    assert exposed == [], f"off loopback, of {len(sockets)} sockets:\n" + "\n".join(exposed)


def _listeners(sockets: Iterable[BoundSocket], process: str) -> set[str]:
    return {s.address for s in sockets if s.process == process and s.listening}


# -- plain locust -f ---------------------------------------------------------------------------


WEB_UI_PORT = 8089  # Locust's default
MASTER_PORT = 5557  # Locust's default
# Modules of the locustfiles' own that define no User: imported by the locustfiles, never run.
LOCUST_GLUE = ("loopback.py", "live_tab.py", "shard_channel.py")
LOCUSTFILES = sorted(
    path.name for path in (PROJECT_ROOT / "locustfiles").glob("*.py") if path.name not in LOCUST_GLUE
)


@pytest.fixture
def locust_env(tmp_path: Path) -> dict[str, str]:
    """A stack file (a stack "run by other means") so a locustfile starts with no stack running:
    binding needs none."""
    topology = Topology.from_settings(StackSettings(ports=PortSettings(base=21000, toxiproxy_api=21474)))
    (tmp_path / "stack.json").write_text(topology.to_json())
    return {
        **os.environ,
        "DOORBUSTER_STACK_FILE": str(tmp_path / "stack.json"),
        "DOORBUSTER_STATE_DIR": str(tmp_path / "state"),
        "DOORBUSTER_RUN_DIR": str(tmp_path / "run"),
    }


def _plain_locust_listeners(
    env: dict[str, str], cwd: Path, locustfile: str, args: list[str]
) -> list[BoundSocket]:
    """Start ``locust -f locustfiles/LOCUSTFILE ARGS`` in ``cwd``; once its web UI (which it
    starts last) listens, every socket of its process group; then stop it."""
    log = cwd / "locust.log"
    cmd = [sys.executable, "-m", "locust", "-f", str(PROJECT_ROOT / "locustfiles" / locustfile), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            sockets = bound_sockets(_groups_and_descendants({proc.pid: "locust"}))
            if any(s.port == WEB_UI_PORT and s.listening for s in sockets):
                return sockets
            time.sleep(0.2)
        raise AssertionError(f"Locust's web UI did not start: {log.read_text(errors='replace')[-2000:]}")
    finally:
        stop_group(proc, timeout_s=20)


@pytest.mark.parametrize("locustfile", LOCUSTFILES)
def test_every_locustfile_binds_its_web_ui_to_loopback_by_default(
    locust_env: dict[str, str], tmp_path: Path, locustfile: str
) -> None:
    sockets = _plain_locust_listeners(locust_env, tmp_path, locustfile, [])
    assert f"127.0.0.1:{WEB_UI_PORT}" in _listeners(sockets, "locust"), "\n".join(map(str, sockets))
    _assert_all_on_loopback(sockets)


@pytest.mark.parametrize(
    ("args", "locust_conf", "expected"),
    [
        (["--master"], None, {f"127.0.0.1:{WEB_UI_PORT}", f"127.0.0.1:{MASTER_PORT}"}),
        # One setting from the command line, one from ./locust.conf: each wins over the default.
        (
            ["--web-host", "127.0.0.2", "--master"],
            "master-bind-host = 127.0.0.3\n",
            {f"127.0.0.2:{WEB_UI_PORT}", f"127.0.0.3:{MASTER_PORT}"},
        ),
    ],
    ids=["master", "overridden"],
)
def test_a_master_binds_loopback_by_default_and_the_user_can_override_both(
    locust_env: dict[str, str], tmp_path: Path, args: list[str], locust_conf: str | None, expected: set[str]
) -> None:
    if locust_conf is not None:
        (tmp_path / "locust.conf").write_text(locust_conf)  # Locust reads ./locust.conf
    sockets = _plain_locust_listeners(locust_env, tmp_path, "black_friday.py", args)
    assert expected <= _listeners(sockets, "locust"), "\n".join(map(str, sockets))
    _assert_all_on_loopback(sockets)


# -- the stack and a running load test, on every broker ----------------------------------------


SCENARIO = """
name: loopback
stack: {{broker: {broker}, time_scale: 0.2}}
load:
  stages:
    - {{name: steady, duration: 60s, rate: 4}}
  poll: {{initial: 0.2s, max: 1s, give_up: 10s}}
drain_timeout: 5s
"""


@contextlib.contextmanager
def _running_load(stack: RunningStack, tmp_path: Path) -> Iterator[dict[int, str]]:
    """A real ``doorbuster run`` (Locust master and one worker) against the stack; yields its
    processes (pid -> label) once requests have been recorded, and stops it at the end."""
    scenario = tmp_path / "loopback.yaml"
    scenario.write_text(SCENARIO.format(broker=stack.topology.settings.broker))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness.cli.main", "--state-dir", str(stack.state_dir), "run", str(scenario),
           "--out", str(out), "--workers", "1"]  # fmt: skip
    log = tmp_path / "run.log"
    with log.open("wb") as fh:
        run = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert run.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, (
                "no request recorded: " + log.read_text(errors="replace")[-3000:]
            )
            load = [pid for pid, _ in stack.stack.state.read_load_pids()]
            if len(load) == 2 and _recorded(RunDir(out)) > 0:
                break
            time.sleep(0.3)
        master, worker = load
        yield _groups_and_descendants(
            {run.pid: "doorbuster-run", master: "locust-master", worker: "locust-worker"}
        )
        assert run.poll() is None and all(psutil.pid_exists(p) for p in load), "the load ended while read"
    finally:
        # The load has done its part: the run and its Locust (which dies with it) stop now.
        stop_group(run, timeout_s=30)


def _recorded(run_dir: RunDir) -> int:
    """Records written so far: a worker writes its own shard while the load runs (the master
    merges them into requests.jsonl as it quits)."""
    count = 0
    for path in (run_dir.requests, *run_dir.shard_files()):
        with contextlib.suppress(FileNotFoundError):
            count += path.read_bytes().count(b"\n")
    return count


def test_every_socket_of_the_stack_and_of_a_running_load_test_is_on_loopback(
    broker_stack: RunningStack, tmp_path: Path
) -> None:
    topology = broker_stack.topology
    with _running_load(broker_stack, tmp_path) as load:
        processes = {**stack_processes(broker_stack.stack), **load, **_epmd_of_this_network()}
        sockets = bound_sockets(processes)
    print(f"\n{topology.settings.broker}: {len(processes)} processes")
    for s in sorted(sockets, key=lambda s: (s.process, s.proto, not s.listening, s.port)):
        if s.listening:
            print(f"  {s}")
    print(f"  and {sum(not s.listening for s in sockets)} connections")
    _assert_all_on_loopback(sockets)
    # Each process listens where the topology says, and Toxiproxy on every proxy too.
    for spec in topology.processes:
        assert spec.endpoint.address in _listeners(sockets, spec.name), spec.name
    assert {p.listen for p in topology.proxies} <= _listeners(sockets, "toxiproxy")
    assert topology.endpoint("supervisor").address in _listeners(sockets, "supervisor")
    assert _listeners(sockets, "live") == {topology.endpoint("live").address}  # the page, and nothing else
    master = _listeners(sockets, "locust-master")
    assert {
        topology.endpoint("locust-master").address,
        topology.endpoint("locust-exporter").address,
    } <= master
    assert any(s.process == "locust-worker" and not s.listening for s in sockets)
    if topology.settings.broker == "rabbitmq":
        # epmd adds ::1 of its own to the address it is given; both are loopback (checked above).
        assert f"127.0.0.1:{EPMD_PORT}" in _listeners(sockets, "epmd")
