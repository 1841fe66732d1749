"""Distributed open-model load: N Locust workers together send the scenario's one arrival
process, interleaved, not N copies of it in phase; the master's exporter counts their
latencies as recorded.

Real Locust (master and workers as processes) against a trivial HTTP server on loopback,
started by the test; run these inside ``unshare --net`` so ports never collide.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness.records.schema import read_requests
from model.settings import PortSettings, StackSettings
from model.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "shoppers.py"
RATE = 20.0  # arrivals per second
SECONDS = 10.0
# Two-sided level of each empirical distribution's band (Dvoretzky-Kiefer-Wolfowitz).
ALPHA = 0.001


class _Orders(BaseHTTPRequestHandler):
    """Answers every order after ``delay_s`` (at once unless a test wants latency); notes when
    each one came, by its own clock (the generators' log is not the only witness)."""

    received: list[float]
    delay_s: float = 0.0

    def do_POST(self) -> None:
        self.received.append(time.time())
        time.sleep(self.delay_s)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"order_id": f"o-{time.monotonic_ns()}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def _orders_server(delay_s: float) -> Iterator[tuple[str, list[float]]]:
    received: list[float] = []
    handler = type("Orders", (_Orders,), {"received": received, "delay_s": delay_s})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def orders() -> Iterator[tuple[str, list[float]]]:
    with _orders_server(0.0) as server:
        yield server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp: Path, url: str, workers: int, rate: float = RATE, seconds: float = SECONDS) -> dict[str, str]:
    scenario = {
        "name": "interleaved-arrivals",
        "load": {
            "model": "open",
            "lanes": ["sync"],
            "stages": [{"name": "steady", "duration": seconds, "rate": rate}],
            "think_time": 0,
            "impatient": {"timeout": "10s", "retries": 0},
            "max_in_flight": 5000,
        },
    }
    (tmp / "scenario.json").write_text(json.dumps(scenario))
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DOORBUSTER_SCENARIO": str(tmp / "scenario.json"),
        "DOORBUSTER_TARGETS": json.dumps({"sync": url}),
        "DOORBUSTER_RUN_DIR": str(tmp),
        "DOORBUSTER_STATE_DIR": str(tmp / "no-stack"),
        "DOORBUSTER_WORKERS": str(workers),
    }


def _locust(role: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING", *role]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _master(port: int, workers: int) -> list[str]:
    return ["--headless", "--only-summary", "--master", "--expect-workers", str(workers),
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]  # fmt: skip


def _worker(port: int) -> list[str]:
    return ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _intended_starts(run_dir: Path) -> list[float]:
    """Each arrival's intended start, from the first attempts in requests.jsonl."""
    return sorted(
        rec.intended_start
        for rec in read_requests(run_dir / "requests.jsonl")
        if rec.kind in ("checkout", "dropped") and rec.attempt == 0
    )


def _run(tmp: Path, orders: tuple[str, list[float]], workers: int) -> tuple[list[float], list[float]]:
    """One run's intended starts (from requests.jsonl) and the server's receive times."""
    url, received = orders
    tmp.mkdir()
    env = _env(tmp, url, workers)
    port = _free_port()
    first = len(received)
    procs = [_locust(_master(port, workers), env, tmp / "master.log")]
    try:
        procs += [_locust(_worker(port), env, tmp / f"worker-{i}.log") for i in range(workers)]
        procs[0].wait(SECONDS + 60)
    finally:
        _stop(procs)
    assert procs[0].returncode == 0, (tmp / "master.log").read_text()[-2000:]
    return _intended_starts(tmp), sorted(received[first:])


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def _ecdf(values: list[float], x: float) -> float:
    return sum(1 for v in values if v <= x) / len(values)


def _band(a: list[float], b: list[float]) -> float:
    """Sum of both samples' DKW bands at level ALPHA: two empirical distributions of one
    distribution stay this close at every point, but with probability ALPHA."""
    return sum(math.sqrt(math.log(2 / ALPHA) / (2 * len(g))) for g in (a, b))


def test_two_workers_send_the_one_workers_arrival_process_interleaved(
    orders: tuple[str, list[float]], tmp_path: Path
) -> None:
    single, single_received = _run(tmp_path / "one", orders, 1)
    merged, merged_received = _run(tmp_path / "two", orders, 2)
    expected = round(RATE * SECONDS)
    assert len(single) == len(merged) == expected
    assert len(single_received) == len(merged_received) == expected

    # Up to the log's 0.1 ms rounding, the merged starts are the single schedule itself.
    assert max(abs((m - merged[0]) - (s - single[0])) for m, s in zip(merged, single, strict=True)) < 1e-3

    # KS-style: the empirical distributions of the inter-arrival gaps agree within the DKW
    # bands. Intended gaps are the spacing up to the log's rounding, so they are compared at
    # thresholds off it (a sub-millisecond shift is no burst); the server's receive gaps,
    # spread by scheduling, at every gap either run saw. Arrivals in phase would put half
    # the merged gaps near 0.
    spacing = 1 / RATE
    gaps_1, gaps_2 = _gaps(single), _gaps(merged)
    band = _band(gaps_1, gaps_2)
    thresholds = [spacing * q / 20 for q in (*range(1, 19), *range(22, 41))]
    distance = max(abs(_ecdf(gaps_1, x) - _ecdf(gaps_2, x)) for x in thresholds)
    assert distance <= band, f"intended gaps' distributions differ by {distance:.3f} (band {band:.3f})"

    seen_1, seen_2 = _gaps(single_received), _gaps(merged_received)
    seen_band = _band(seen_1, seen_2)
    seen_distance = max(abs(_ecdf(seen_1, x) - _ecdf(seen_2, x)) for x in seen_1 + seen_2)
    bursts_1 = sum(1 for g in seen_1 if g < spacing / 2) / len(seen_1)
    bursts_2 = sum(1 for g in seen_2 if g < spacing / 2) / len(seen_2)
    assert seen_distance <= seen_band, (
        f"received gaps' distributions differ by {seen_distance:.3f} (band {seen_band:.3f}); "
        f"gaps under half the spacing: {bursts_1:.1%} with 1 worker, {bursts_2:.1%} with 2"
    )


def test_a_worker_beyond_the_worker_count_refuses_to_start(
    orders: tuple[str, list[float]], tmp_path: Path
) -> None:
    env = _env(tmp_path, orders[0], 1)
    port = _free_port()
    procs = [_locust(_master(port, 1), env, tmp_path / "master.log")]
    try:
        # The master gives indexes in the order workers connect: the second one gets index 1.
        for i in range(2):
            procs.append(_locust(_worker(port), env, tmp_path / f"worker-{i}.log"))
            time.sleep(2)
        deadline = time.time() + 30
        while all(p.poll() is None for p in procs[1:]) and time.time() < deadline:
            time.sleep(0.2)
        refused = [i for i, p in enumerate(procs[1:]) if p.poll() is not None]
        master_running = procs[0].poll() is None
    finally:
        _stop(procs)
    assert len(refused) == 1, f"workers that exited: {refused}"
    assert master_running, "the worker only stopped with the master"
    log = (tmp_path / f"worker-{refused[0]}.log").read_text()
    assert procs[1 + refused[0]].returncode == 2, log[-2000:]
    assert "has index 1, but an open-model run of 1 worker(s)" in log
    assert "refusing to start" in log
    assert "Traceback" not in log


def test_the_exporter_counts_the_workers_latencies_as_recorded_not_rounded(tmp_path: Path) -> None:
    # Answers after 1.51 s: latencies just above the 1.5 s bound, which Locust keeps rounded
    # to 1500 ms (up to 1.55 s) and a histogram rebuilt from its figures puts under le=1.5.
    rate, seconds = 4.0, 3.0
    stack = Topology.from_settings(StackSettings(ports=PortSettings(base=21500)))
    (tmp_path / "stack.json").write_text(stack.to_json())
    exporter = stack.endpoint("locust-exporter")
    port = _free_port()
    scraped = ""
    with _orders_server(1.51) as (url, _):
        env = {**_env(tmp_path, url, 2, rate, seconds), "DOORBUSTER_STACK_FILE": str(tmp_path / "stack.json")}
        procs = [_locust(_master(port, 2), env, tmp_path / "master.log")]
        try:
            procs += [_locust(_worker(port), env, tmp_path / f"worker-{i}.log") for i in range(2)]
            deadline = time.time() + seconds + 60
            while procs[0].poll() is None and time.time() < deadline:
                with contextlib.suppress(requests.RequestException):
                    scraped = requests.get(f"{exporter.url}/metrics", timeout=2).text
                time.sleep(0.25)
        finally:
            _stop(procs)
    assert procs[0].returncode == 0, (tmp_path / "master.log").read_text()[-2000:]
    buckets, count, total = {}, 0.0, 0.0
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.labels.get("lane") != "sync" or sample.labels.get("kind") != "checkout":
                continue
            if sample.name == "doorbuster_locust_request_duration_seconds_bucket":
                buckets[sample.labels["le"]] = sample.value
            elif sample.name == "doorbuster_locust_request_duration_seconds_count":
                count = sample.value
            elif sample.name == "doorbuster_locust_request_duration_seconds_sum":
                total = sample.value
    assert count == rate * seconds, f"the last scrape counted {count} checkouts"
    assert buckets["1.5"] == 0
    assert buckets["1.85"] == count
    assert 1.51 <= total / count < 1.85
