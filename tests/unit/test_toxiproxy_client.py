"""A Toxiproxy API that accepts connections and never answers must not hang anything.

The "black hole" is a real socket server on 127.0.0.1 that accepts every connection and never
writes a byte (the way a stuck Toxiproxy looks to a client).  Each check runs its call with a
deadline of its own, so code without a timeout fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.faults.chaos import Chaos
from harness.faults.leases import FaultLease, sweep_leftovers
from harness.processes import process_record
from harness.stack.state import StateDir
from harness.stack.supervisor import FaultCollector
from model import metric_names as names
from model.errors import ExitCode, ToxiproxyUnavailable
from model.faults import FaultSpec
from model.settings import PortSettings, StackSettings
from model.topology import Topology

CALL_TIMEOUT_S = 0.5
# Far above CALL_TIMEOUT_S (a contended machine), far below "hangs".
DEADLINE_S = 10.0


class BlackHoleAPI:
    """Accepts on 127.0.0.1:``port`` and holds every connection open without answering."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.port = _bind_outside_ephemeral_range(self.sock)
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def _bind_outside_ephemeral_range(sock: socket.socket) -> int:
    """A free loopback port the topology accepts (not in 32768-60999), chosen by the test."""
    for port in random.sample(range(29000, 30000), 50):
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port in 29000-29999")


@pytest.fixture
def black_hole() -> Iterator[BlackHoleAPI]:
    server = BlackHoleAPI()
    try:
        yield server
    finally:
        server.close()


def _topology(toxiproxy_port: int) -> Topology:
    return Topology.from_settings(StackSettings(ports=PortSettings(toxiproxy_api=toxiproxy_port)))


def _run_with_deadline(call: Callable[[], Any], deadline_s: float) -> tuple[BaseException | None, float]:
    """Run ``call`` in a thread; (what it raised, seconds taken), or fail if it is still running."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(deadline_s)
    if thread.is_alive():
        pytest.fail(f"still waiting on the black hole after {deadline_s:g}s: the call has no deadline")
    return outcome[0], time.monotonic() - started


CHAOS_CALLS: dict[str, Callable[[Chaos], Any]] = {
    "proxies": lambda chaos: chaos.proxies(),
    "active": lambda chaos: chaos.active(),
    "ensure_proxies": lambda chaos: chaos.ensure_proxies(),
    "reset": lambda chaos: chaos.reset(),
    "add": lambda chaos: chaos.add(
        FaultSpec(dependency="payment", type="latency", lanes=("sync",), attributes={"latency": 100})
    ),
    "set_enabled": lambda chaos: chaos.set_enabled("payment", ("sync",), enabled=False),
}


@pytest.mark.parametrize("call", sorted(CHAOS_CALLS))
def test_a_chaos_call_to_a_silent_toxiproxy_fails_in_bounded_time(
    black_hole: BlackHoleAPI, call: str
) -> None:
    chaos = Chaos(_topology(black_hole.port), timeout_s=CALL_TIMEOUT_S)
    raised, took = _run_with_deadline(lambda: CHAOS_CALLS[call](chaos), DEADLINE_S)
    assert isinstance(raised, ToxiproxyUnavailable), raised
    assert f"127.0.0.1:{black_hole.port}" in str(raised)
    assert "did not answer within 0.5s" in str(raised)
    assert black_hole.held, "the black hole never saw the call"
    assert took >= CALL_TIMEOUT_S


def test_ping_of_a_silent_toxiproxy_says_no_in_bounded_time(black_hole: BlackHoleAPI) -> None:
    answers: list[bool] = []
    chaos = Chaos(_topology(black_hole.port))
    raised, took = _run_with_deadline(lambda: answers.append(chaos.ping()), DEADLINE_S)
    assert raised is None
    assert answers == [False]
    assert black_hole.held
    assert took < chaos.timeout_s, f"ping waited {took:.1f}s, as long as a full call"


def test_the_supervisors_fault_exporter_answers_without_faults_in_bounded_time(
    black_hole: BlackHoleAPI,
) -> None:
    collector = FaultCollector(_topology(black_hole.port))
    families: list[Any] = []
    raised, took = _run_with_deadline(lambda: families.extend(collector.collect()), DEADLINE_S)
    assert raised is None
    assert [family.name for family in families] == [names.TOXIC_ACTIVE]
    assert families[0].samples == []
    assert black_hole.held
    # Its own short deadline: the scrape must still be answered within Prometheus' timeout.
    assert took < collector.chaos.timeout_s * 4, f"took {took:.1f}s"


def test_sweeping_leftover_faults_against_a_silent_toxiproxy_fails_in_bounded_time(
    black_hole: BlackHoleAPI, tmp_path: Path
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    FaultLease(tmp_path, owner="a run that died", pid=gone.pid).hold(("sync",), "payment", "slow")
    chaos = Chaos(_topology(black_hole.port), timeout_s=CALL_TIMEOUT_S)
    raised, _ = _run_with_deadline(lambda: sweep_leftovers(tmp_path, chaos), DEADLINE_S)
    assert isinstance(raised, ToxiproxyUnavailable), raised
    assert f"127.0.0.1:{black_hole.port}" in str(raised)


def test_toxic_list_against_a_silent_toxiproxy_exits_3_with_a_message(
    black_hole: BlackHoleAPI, tmp_path: Path
) -> None:
    state = StateDir(tmp_path)
    state.prepare()
    state.stack_file.write_text(_topology(black_hole.port).to_json())
    # A live pid as the supervisor's (this test's own), so the CLI takes the stack for running.
    state.write_supervisor({**process_record(os.getpid()), "processes": {}})
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli.main", "--state-dir", str(tmp_path), "toxic", "list"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("doorbuster toxic list still waited on the black hole after 60s")
    took = time.monotonic() - started
    assert done.returncode == ExitCode.ENVIRONMENT, done.stderr
    assert "ToxiproxyUnavailable" in done.stderr
    assert f"127.0.0.1:{black_hole.port}" in done.stderr
    assert "did not answer within 5s" in done.stderr
    assert "Traceback" not in done.stderr
    assert took < 30, f"took {took:.1f}s"
