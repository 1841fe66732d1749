"""Break the harness on purpose, under load, on the real processes; lose nothing, leave nothing.

Each test keeps orders flowing into the async lane while a process is killed or the broker
hop misbehaves, then checks that every order that got its 202 is fulfilled, that no side
effect happened twice, and that no fault is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest
import requests

from harness.binaries import PROJECT_ROOT
from harness.metrics.counters import CounterSampler
from harness.run.smoke import wait_fulfilled
from harness.stack.state import StateDir
from model import metric_names as names
from model.faults import FaultSpec
from tests.integration.conftest import RunningStack

ORDER = {"customer_id": "fault-test", "items": [{"sku": "tv-55", "qty": 1}]}


class BackgroundOrders:
    """Orders at a steady rate into one lane, in a thread, bounded in count and time."""

    def __init__(self, url: str, rate: float, seconds: float) -> None:
        self.url, self.rate, self.count = url, rate, int(rate * seconds)
        self.accepted: list[str] = []
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def one() -> None:
                try:
                    async with session.post(f"{self.url}/orders", json=ORDER) as response:
                        self.statuses.append(response.status)
                        if response.status == 202:
                            self.accepted.append((await response.json())["order_id"])
                except (TimeoutError, aiohttp.ClientError):
                    self.statuses.append(0)

            tasks = []
            for _ in range(self.count):
                tasks.append(asyncio.ensure_future(one()))
                await asyncio.sleep(1 / self.rate)
            await asyncio.gather(*tasks)

    def __enter__(self) -> BackgroundOrders:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=120)


def _pid(stack: RunningStack, name: str) -> int:
    record = json.loads((stack.state_dir / "supervisor.json").read_text())
    return int(record["processes"][name]["pid"])


def _kill(stack: RunningStack, name: str) -> int:
    pid = _pid(stack, name)
    os.killpg(pid, signal.SIGKILL)
    return pid


def _wait_restarted(stack: RunningStack, name: str, old_pid: int, timeout: float = 60) -> None:
    from harness.stack.control import probe

    spec = stack.topology.process(name)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _pid(stack, name) != old_pid and probe(spec):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} was not restarted within {timeout}s")


def _assert_nothing_lost(stack: RunningStack, load: BackgroundOrders, timeout: float = 120) -> None:
    assert load.accepted, "no order was accepted at all"
    fulfilled = asyncio.run(wait_fulfilled(stack.url("async"), load.accepted, timeout_s=timeout))
    assert fulfilled == len(load.accepted), f"{len(load.accepted) - fulfilled} of {len(load.accepted)} lost"
    for dep in stack.topology.settings.deferred:
        ledger = requests.get(
            f"{stack.topology.endpoint(f'downstream-async-{dep}').url}/ledger", timeout=5
        ).json()
        assert ledger["duplicated_orders"] == 0, dep
    assert stack.chaos.active() == []


def _unfinished(stack: RunningStack, order_ids: list[str]) -> list[str]:
    """The orders among ``order_ids`` that the async order service has not finished yet."""
    if not order_ids:
        return []
    answer = requests.post(f"{stack.url('async')}/ledger/check", json={"order_ids": order_ids}, timeout=5)
    return [order for order, status in answer.json()["statuses"].items() if status == "accepted"]


def _work_in_flight(
    stack: RunningStack, load: BackgroundOrders, workers: list[str], timeout: float
) -> list[str]:
    """Polls (bounded) until an accepted order is unfinished and one of ``workers`` holds a
    message unacknowledged; returns those orders ([] if that never happened)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        held = sum(stack.metric(worker, names.WORKER_MESSAGES_IN_PROGRESS) for worker in workers)
        unfinished = _unfinished(stack, list(load.accepted))
        if held > 0 and unfinished:
            return unfinished
        time.sleep(0.05)
    return []


def test_kill_9_a_worker_mid_run(stack: RunningStack) -> None:
    counters = CounterSampler(stack.topology)
    counters.read()
    with BackgroundOrders(stack.url("async"), rate=8, seconds=12) as load:
        time.sleep(2)
        in_flight = _work_in_flight(stack, load, ["worker-email"], timeout=6)
        old = _kill(stack, "worker-email")
        _wait_restarted(stack, "worker-email", old)
    # The kill hit work: orders unfinished and a message held by the worker at that moment.
    assert in_flight, "worker-email held no message when it was killed: the kill hit an idle process"
    assert load.statuses.count(202) == len(load.statuses)
    _assert_nothing_lost(stack, load)
    assert set(in_flight) <= set(load.accepted)
    # What the killed worker held came back: its new process counted it redelivered.
    redelivered = stack.metric("worker-email", names.WORKER_MESSAGES_REDELIVERED)
    assert redelivered >= 1, "nothing was redelivered after the kill"
    # The run's counter figures across the restart: the new process counts from 0, nothing
    # is negative, nothing is missing.
    counters.read()
    figures = counters.counters()
    assert figures.restarted == ["worker-email"]
    assert figures.incomplete == {}
    assert figures.broker["redelivered"] >= redelivered
    assert all(value >= 0 for key, value in figures.broker.items() if key != "name")
    attempts, orders = figures.attempts["async"]
    assert orders >= len(load.statuses) and attempts >= len(load.accepted)


def test_kill_9_the_broker_mid_run(stack: RunningStack) -> None:
    workers = [spec.name for spec in stack.topology.processes if spec.kind == "worker"]
    counters = CounterSampler(stack.topology)
    counters.read()
    with BackgroundOrders(stack.url("async"), rate=5, seconds=20) as load:
        time.sleep(2)
        in_flight = _work_in_flight(stack, load, workers, timeout=6)
        old = _kill(stack, "broker")
        _wait_restarted(stack, "broker", old, timeout=90)
    # The kill hit orders on their way through the broker, not an idle one.
    assert in_flight, "no worker held a message for an unfinished order when the broker was killed"
    # The outbox took every order while the broker was away: nothing refused, nothing lost,
    # the orders in flight at the kill included.
    assert load.statuses.count(202) == len(load.statuses)
    _assert_nothing_lost(stack, load, timeout=180)
    assert _unfinished(stack, in_flight) == []
    # What the workers held when the broker died was delivered again.
    counters.read()
    figures = counters.counters()
    assert figures.incomplete == {} and figures.restarted == []
    assert figures.broker["redelivered"] >= 1, "nothing was redelivered after the broker came back"


STEADY = """
name: steady
load:
  stages: [{name: baseline, duration: 20s, rate: 6}]
drain_timeout: 60s
"""


def _wait_holding(stack: RunningStack, worker: str, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and stack.metric(worker, names.WORKER_MESSAGES_IN_PROGRESS) == 0:
        time.sleep(0.05)
    assert stack.metric(worker, names.WORKER_MESSAGES_IN_PROGRESS) > 0, f"{worker} held no message"


def test_a_run_counts_across_a_worker_killed_mid_run(stack: RunningStack, tmp_path: Path) -> None:
    scenario = tmp_path / "steady.yaml"
    scenario.write_text(STEADY)
    out = tmp_path / "run"
    cli = [sys.executable, "-m", "harness.cli.main", "--state-dir", str(stack.state_dir)]
    run = subprocess.Popen([*cli, "run", str(scenario), "--out", str(out)], cwd=PROJECT_ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        # Halfway through the load, so the worker has counted plenty before it dies.
        _wait_holding(stack, "worker-email", timeout=60)
        time.sleep(8)
        _wait_holding(stack, "worker-email", timeout=10)
        old = _kill(stack, "worker-email")
        _wait_restarted(stack, "worker-email", old)
        assert run.wait(180) == 0
    finally:
        if run.poll() is None:
            run.kill()
    summary = json.loads((out / "summary.json").read_text())
    # Counted from 0 after the restart, not new minus old: complete and not negative.
    assert summary["counters"] == {"incomplete": {}, "restarted": ["worker-email"]}
    assert summary["broker"]["redelivered"] >= 1
    assert all(v >= 0 for k, v in summary["broker"].items() if k != "name")
    # Every order was fulfilled, so each cost at least one call per dependency; the killed
    # worker's calls after its last reading (2 s apart, about 6 calls a second) may be missing.
    # New minus old would lose all it counted, half a run's worth.
    orders = summary["lanes"]["async"]["orders"]
    assert orders["fulfilled"] == orders["accepted"] == 120
    assert summary["retry_amplification"]["async"] >= len(stack.topology.settings.chain) - 0.25
    assert any("Restarted during the run: worker-email" in line for line in summary["reading"])


@pytest.mark.parametrize(
    ("toxic", "attributes"), [("reset_peer", {"timeout": 0}), ("timeout", {"timeout": 0})]
)
def test_broker_hop_resets_and_stalls(
    stack: RunningStack, toxic: str, attributes: dict[str, int | float]
) -> None:
    with BackgroundOrders(stack.url("async"), rate=5, seconds=15) as load:
        time.sleep(3)
        stack.chaos.add(FaultSpec(dependency="broker", type=toxic, lanes=("async",), attributes=attributes))
        time.sleep(8)
        stack.chaos.reset()
    assert load.statuses.count(202) == len(load.statuses)
    _assert_nothing_lost(stack, load, timeout=180)


def test_restart_the_async_order_service_the_outbox_still_delivers(stack: RunningStack) -> None:
    # Stall the broker hop so accepted orders pile up in the outbox, then kill the service.
    stack.chaos.add(
        FaultSpec(dependency="broker", type="timeout", lanes=("async",), attributes={"timeout": 0})
    )
    with BackgroundOrders(stack.url("async"), rate=5, seconds=4) as load:
        pass
    backlog = requests.get(f"{stack.url('async')}/ledger", timeout=5).json()["outbox_backlog"]
    old = _kill(stack, "order-async")
    _wait_restarted(stack, "order-async", old)
    stack.chaos.reset()
    assert backlog > 0, "the test meant to kill the service with an outbox backlog"
    assert load.statuses.count(202) == len(load.statuses)
    _assert_nothing_lost(stack, load, timeout=180)


def test_kill_9_toxiproxy_the_supervisor_puts_the_proxies_back(stack: RunningStack) -> None:
    stack.chaos.add(
        FaultSpec(dependency="email", type="latency", lanes=("sync",), attributes={"latency": 100})
    )
    with BackgroundOrders(stack.url("async"), rate=5, seconds=15) as load:
        time.sleep(3)
        old = _kill(stack, "toxiproxy")
        _wait_restarted(stack, "toxiproxy", old)
    proxies = stack.chaos.proxies()
    assert set(proxies) == {p.name for p in stack.topology.proxies}
    assert all(p["enabled"] for p in proxies.values())
    # Orders sent while Toxiproxy was away failed honestly (no 202); every 202 is kept.
    _assert_nothing_lost(stack, load, timeout=180)
    sync = requests.post(f"{stack.url('sync')}/orders", json=ORDER, timeout=30)
    assert sync.status_code == 200


SCENARIO = """
name: crash
load:
  stages: [{name: baseline, duration: 120s, rate: 2}]
chaos:
  - {name: email-slow, at: 1s, for: 110s, dependency: email, type: latency, attributes: {latency: 700}}
drain_timeout: 30s
"""


def _processes_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().split(") ", 1)[1][0] != "Z":
                alive.append(pid)
    return alive


def test_kill_9_a_run_mid_fault_the_next_command_cleans_up_and_down_leaves_no_orphan(tmp_path: Path) -> None:
    """On a stack of its own, since it ends with `doorbuster down`."""
    state = tmp_path / "state"
    base = ["--state-dir", str(state)]
    cli = [sys.executable, "-m", "harness.cli.main", *base]
    ports = ["--base-port", "24000", "--toxiproxy-port", "24474"]
    subprocess.run([*cli, "up", *ports], check=True, capture_output=True, timeout=180, cwd=PROJECT_ROOT)
    try:
        scenario = tmp_path / "crash.yaml"
        scenario.write_text(SCENARIO)
        run = subprocess.Popen([*cli, "run", str(scenario), "--out", str(tmp_path / "run")], cwd=PROJECT_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        chaos_file = tmp_path / "run" / "chaos.json"
        deadline = time.time() + 90
        while time.time() < deadline:
            if chaos_file.exists() and any(
                f["started_at"] for f in json.loads(chaos_file.read_text())["faults"]
            ):
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the run never applied its fault")
        load_pids = [pid for pid, _ in StateDir(state).read_load_pids()]
        # Everything that could clean up dies, and none of it gets a chance to: the run is
        # frozen first, so it can not notice its Locust dying and reset the faults itself.
        os.kill(run.pid, signal.SIGSTOP)
        for pid in load_pids:
            os.killpg(pid, signal.SIGKILL)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(10)
        time.sleep(1)
        # The next command, whichever it is, names the fault whose owner is gone and removes it.
        status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, timeout=60,
                                cwd=PROJECT_ROOT)  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert "removed a leftover fault" in status.stderr and "email" in status.stderr
        leftovers = json.loads(status.stdout)["leftover_faults"]
        assert sorted((f["lane"], f["dependency"], f["removed"]) for f in leftovers) == [
            ("async", "email", True),
            ("sync", "email", True),
        ]
        listing = subprocess.run([*cli, "toxic", "list", "--json"], capture_output=True, text=True, timeout=60,
                                 cwd=PROJECT_ROOT)  # fmt: skip
        assert listing.returncode == 0, listing.stderr
        assert json.loads(listing.stdout) == []
    finally:
        record = (
            json.loads((state / "supervisor.json").read_text())
            if (state / "supervisor.json").exists()
            else {}
        )
        pids = [int(record["pid"])] if record else []
        pids += [int(p["pid"]) for p in record.get("processes", {}).values()]
        down = subprocess.run([*cli, "down"], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert down.returncode == 0, down.stderr
    assert _processes_alive(pids) == []
    assert not (state / "load.json").exists()
