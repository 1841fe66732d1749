"""Distributed open-model load: N Locust workers together send the scenario's one arrival
process, interleaved, not N copies of it in phase; each keeps its own records, merged into
the run's one log after the load; the master's exporter counts their latencies as recorded.

Real Locust (master and workers as processes) against a trivial HTTP server on loopback,
started by the test; run these inside ``unshare --net`` so ports never collide.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.records.schema import read_requests
from model import metric_names as names
from tests.integration.short_run import (
    free_port,
    master_args,
    open_model_env,
    orders_server,
    scraped_distributed_run,
    start_locust,
    stop_all,
    worker_args,
)

RATE = 20.0  # arrivals per second
SECONDS = 10.0
# Two-sided level of each empirical distribution's band (Dvoretzky-Kiefer-Wolfowitz).
ALPHA = 0.001


@pytest.fixture
def orders() -> Iterator[tuple[str, list[float]]]:
    with orders_server(0.0) as server:
        yield server


def _env(tmp: Path, url: str, workers: int, rate: float = RATE, seconds: float = SECONDS) -> dict[str, str]:
    return open_model_env(tmp, url, workers, rate=rate, seconds=seconds)


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
    port = free_port()
    first = len(received)
    procs = [start_locust(master_args(port, workers), env, tmp / "master.log")]
    try:
        procs += [start_locust(worker_args(port), env, tmp / f"worker-{i}.log") for i in range(workers)]
        procs[0].wait(SECONDS + 60)
    finally:
        stop_all(procs)
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

    # Each worker kept its own records; merged by intended start, they are every request the
    # endpoint answered.
    two = tmp_path / "two"
    assert sorted(p.name for p in (two / "shards").iterdir()) == ["worker-0.jsonl", "worker-1.jsonl"]
    records = read_requests(two / "requests.jsonl")
    assert len(records) == len(merged_received)
    assert [r.intended_start for r in records] == sorted(r.intended_start for r in records)

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
    port = free_port()
    procs = [start_locust(master_args(port, 1), env, tmp_path / "master.log")]
    try:
        # The master gives indexes in the order workers connect: the second one gets index 1.
        for i in range(2):
            procs.append(start_locust(worker_args(port), env, tmp_path / f"worker-{i}.log"))
            time.sleep(2)
        deadline = time.time() + 30
        while all(p.poll() is None for p in procs[1:]) and time.time() < deadline:
            time.sleep(0.2)
        refused = [i for i, p in enumerate(procs[1:]) if p.poll() is not None]
        master_running = procs[0].poll() is None
    finally:
        stop_all(procs)
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
    with orders_server(1.51) as (url, _):
        page = scraped_distributed_run(tmp_path, url, 2, rate=rate, seconds=seconds, base=21500)
    histogram, checkout = names.LOCUST_REQUEST_DURATION, {"lane": "sync", "kind": "checkout"}
    buckets = {s.labels["le"]: s.value for s in page.select(f"{histogram}_bucket", **checkout)}
    count = page.value(f"{histogram}_count", **checkout)
    total = page.value(f"{histogram}_sum", **checkout)
    assert count == rate * seconds, f"the last scrape counted {count} checkouts"
    assert buckets["1.5"] == 0
    assert buckets["1.85"] == count
    assert 1.51 <= total / count < 1.85
