"""A distributed run across two hosts, for real on this machine: a worker in a network
namespace of its own, joined to the master's by a veth pair, with a run directory of its own
(``DOORBUSTER_OWN_RUN_DIR=1``), so its shard reaches the master's run directory only over
Locust's message channel; its records must be in the merged ``requests.jsonl`` with every
arrival of the single-process schedule.

The master's side is the test's own namespace (run the integration tests inside
``unshare --net``): the master bound to the veth address MASTER_IP, a local worker beside it,
and the order server on MASTER_IP, the one host off loopback the load may go to, named in
``DOORBUSTER_ALLOW_HOSTS``. The worker's namespace and the veth pair are made by the test and
removed in a ``finally``, even when it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.binaries import PROJECT_ROOT
from harness.load.shard_transfer import WINDOW
from harness.records.schema import read_requests
from tests.integration.short_run import free_port, open_model_env, orders_server, start_locust, stop_all

RATE = 20.0  # arrivals per second
SECONDS = 5.0
MASTER_IP, WORKER_IP = "10.231.0.1", "10.231.0.2"
# Small chunks: the remote worker's 50 records (about 10 kB) cross in a few dozen chunks,
# several windows of them, as a long run's shard does in 256 KiB chunks.
CHUNK_BYTES = 256


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def worker_netns() -> Iterator[str]:
    """A network namespace joined to this one by a veth pair: MASTER_IP here, WORKER_IP there."""
    name = f"doorbuster-w{os.getpid()}"
    here, there = f"dbm{os.getpid() % 100000}", f"dbw{os.getpid() % 100000}"
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"ip netns is unavailable here (needs root and iproute2): {exc}")
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", name)
        _ip("addr", "add", f"{MASTER_IP}/24", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", name, "addr", "add", f"{WORKER_IP}/24", "dev", there)
        _ip("-n", name, "link", "set", there, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)  # its peer goes with it
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _env(run_dir: Path, url: str, workers: int) -> dict[str, str]:
    run_dir.mkdir(parents=True)
    env = open_model_env(run_dir, url, workers, rate=RATE, seconds=SECONDS)
    return {**env, "DOORBUSTER_ALLOW_HOSTS": MASTER_IP}


def _arrivals(run_dir: Path) -> list[float]:
    return sorted(r.intended_start for r in read_requests(run_dir / "requests.jsonl") if r.attempt == 0)


def test_a_worker_on_another_host_sends_its_shard_to_the_master(worker_netns: str, tmp_path: Path) -> None:
    with orders_server(0.0, host=MASTER_IP) as (url, _):
        # The single-process schedule, as one process sends it.
        single = tmp_path / "single"
        proc = start_locust(["--headless", "--only-summary"], _env(single, url, 1), tmp_path / "single.log")
        try:
            proc.wait(SECONDS + 60)
        finally:
            stop_all([proc])
        assert proc.returncode == 0, (tmp_path / "single.log").read_text()[-2000:]

        master_dir, remote_dir = tmp_path / "master", tmp_path / "remote"
        env = _env(master_dir, url, 2)
        port = str(free_port())
        master = ["--headless", "--only-summary", "--master", "--expect-workers", "2",
                  "--master-bind-host", MASTER_IP, "--master-bind-port", port]  # fmt: skip
        worker = ["--worker", "--master-host", MASTER_IP, "--master-port", port]
        procs = [start_locust(master, env, tmp_path / "master.log")]
        try:
            procs.append(start_locust(worker, env, tmp_path / "local-worker.log"))
            remote_env = {
                **_env(remote_dir, url, 2),
                "DOORBUSTER_OWN_RUN_DIR": "1",
                "DOORBUSTER_SHARD_CHUNK_BYTES": str(CHUNK_BYTES),
            }
            cmd = ["ip", "netns", "exec", worker_netns, sys.executable, "-m", "locust",
                   "-f", str(PROJECT_ROOT / "locustfiles" / "shoppers.py"), "--loglevel", "WARNING", *worker]  # fmt: skip
            with open(tmp_path / "remote-worker.log", "ab") as out:
                procs.append(subprocess.Popen(cmd, env=remote_env, stdout=out, stderr=subprocess.STDOUT))
            procs[0].wait(SECONDS + 90)
            procs[2].wait(30)
        finally:
            stop_all(procs)
    logs = {name: (tmp_path / f"{name}.log").read_text()[-2000:] for name in ("master", "remote-worker")}
    assert procs[0].returncode == 0, logs
    assert procs[2].returncode == 0, logs

    # The remote worker wrote its shard in its own run directory, and the master's run
    # directory holds the same bytes, which came only over the channel.
    remote_shards = sorted((remote_dir / "shards").iterdir())
    assert len(remote_shards) == 1 and remote_shards[0].suffix == ".jsonl", remote_shards
    received = master_dir / "shards" / remote_shards[0].name
    assert received.read_bytes() == remote_shards[0].read_bytes()
    assert remote_shards[0].stat().st_size > 3 * WINDOW * CHUNK_BYTES
    remote_records = read_requests(remote_shards[0])
    assert len(remote_records) >= RATE * SECONDS / 2 - 1

    # Every arrival of the schedule is in the merged log, the remote worker's among them.
    merged = read_requests(master_dir / "requests.jsonl")
    assert {r.json_line() for r in remote_records} <= {r.json_line() for r in merged}
    one, two = _arrivals(single), _arrivals(master_dir)
    assert len(one) == len(two) == round(RATE * SECONDS)
    assert max(abs((b - two[0]) - (a - one[0])) for a, b in zip(one, two, strict=True)) < 1e-3
