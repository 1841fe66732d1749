"""Seeded Poisson arrivals and a replayed access log, sent for real by the shoppers: the same
seed offers the same arrivals, another seed others, and a replay keeps its log's gaps; and a
run's seed reaches the real stack's targets, whose random draws are then the seed's."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import requests
from prometheus_client import CollectorRegistry

from harness.cli.main import main
from harness.load.arrivals import arrival_times
from harness.records.schema import read_requests
from model import metric_names as names
from model.target_config import TARGET_ROLES, TARGET_SEED_PATH
from targets.downstream import DownstreamService
from targets.metrics import DownstreamServerMetrics
from targets.random_streams import RandomStreams
from tests.integration.conftest import RunningStack
from tests.integration.short_run import open_model_env, orders_server, start_locust, stop_all

RATE, SECONDS = 20.0, 4.0


def _sent(tmp: Path, url: str, load: dict[str, Any], seed: int | None) -> list[float]:
    """One plain headless Locust run of ``load`` to ``url``: its checkouts' intended starts."""
    tmp.mkdir()
    env = open_model_env(tmp, url, 1, rate=RATE, seconds=SECONDS)
    scenario = json.loads((tmp / "scenario.json").read_text())
    scenario["load"].update(load)
    if seed is not None:
        scenario["seed"] = seed
    (tmp / "scenario.json").write_text(json.dumps(scenario))
    proc = start_locust(["--headless", "--only-summary"], env, tmp / "locust.log")
    try:
        proc.wait(SECONDS + 60)
    finally:
        stop_all([proc])
    assert proc.returncode == 0, (tmp / "locust.log").read_text()[-2000:]
    return sorted(r.intended_start for r in read_requests(tmp / "requests.jsonl") if r.kind == "checkout")


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 4) for a, b in itertools.pairwise(times)]


def test_the_same_seed_offers_the_same_poisson_arrivals_and_another_seed_others(tmp_path: Path) -> None:
    with orders_server(0.0) as (url, _):
        first = _sent(tmp_path / "a", url, {"arrivals": "poisson"}, seed=7)
        again = _sent(tmp_path / "b", url, {"arrivals": "poisson"}, seed=7)
        other = _sent(tmp_path / "c", url, {"arrivals": "poisson"}, seed=8)
    planned = list(arrival_times([(SECONDS, RATE)], process="poisson", seed=7))
    assert len(first) == len(planned) == len(again)
    assert _gaps(first) == _gaps(again)  # intended starts from the schedule's start, to 0.1 ms
    assert _gaps(first) == _gaps([round(t, 4) for t in planned])
    assert _gaps(other) != _gaps(first)
    gaps = _gaps(first)
    assert len(set(gaps)) > len(gaps) / 2  # not evenly spaced (that would be one gap: 0.05 s)


def test_a_replayed_log_is_sent_with_its_gaps_at_its_speed(tmp_path: Path) -> None:
    seconds = [0.0, 0.4, 0.5, 1.5, 1.6, 3.0, 5.0]
    lines = [
        json.dumps({"timestamp": 1_700_000_000 + s, "method": "POST", "path": "/orders"}) for s in seconds
    ]
    lines.insert(2, json.dumps({"timestamp": 1_700_000_000.45, "method": "GET", "path": "/health"}))
    log = tmp_path / "access.jsonl"
    log.write_text("\n".join(lines) + "\n")
    replay = {"file": str(log), "speed": 2, "lanes": [{"path": "^/orders", "lane": "sync"}]}
    with orders_server(0.0) as (url, _):
        sent = _sent(tmp_path / "r", url, {"arrivals": "replay", "replay": replay}, seed=None)
    # /health matches no rule; 5.0 s at speed 2 is 2.5 s, inside the 4 s load; each gap halved.
    assert _gaps(sent) == _gaps([s / 2 for s in seconds])


SEEDED_RUN = """
name: seeded-targets
load:
  lanes: [sync]
  stages:
    - {name: steady, duration: 6s, rate: 3}
  poll: {initial: 0.5s, max: 2s, give_up: 30s}
drain_timeout: 10s
"""
# What a downstream's answer adds to its seeded service time (reading the body, the ledger's
# write, the event loop's turn): a few milliseconds a request on a busy machine.
OVERHEAD_S = 0.015


def _drawn(dependency: str, stack: RunningStack, seed: int, n: int) -> float:
    """The total service time the sync lane's ``dependency`` draws for its first ``n``
    requests under ``seed``: the same streams the process derives, drawn here."""
    service = DownstreamService(
        lane="sync", dependency=dependency, settings=stack.topology.settings.chain[dependency],
        time_scale=stack.topology.settings.time_scale, metrics=DownstreamServerMetrics(CollectorRegistry()),
        rng=RandomStreams(f"downstream-sync-{dependency}", seed=seed).stream("work"),
    )  # fmt: skip
    return sum(service.work_seconds() for _ in range(n))


def test_a_runs_seed_reaches_every_target_and_fixes_the_downstreams_draws(
    stack: RunningStack, tmp_path: Path
) -> None:
    """A downstream's service time is a log-normal draw from its seeded stream; at 3 orders a
    second its 64 slots never queue, so the time it spent answering the run's requests is the
    sum of its stream's first draws, whatever order they came in."""
    chain = tuple(stack.topology.settings.chain)

    def reading(dep: str) -> tuple[float, float]:
        process = f"downstream-sync-{dep}"
        return (
            stack.metric(process, names.DOWNSTREAM_REQUESTS, code="200"),
            stack.metric(process, f"{names.DOWNSTREAM_REQUEST_DURATION}_sum"),
        )

    before = {dep: reading(dep) for dep in chain}
    scenario = tmp_path / "seeded.yaml"
    scenario.write_text(SEEDED_RUN)
    run = ["run", str(scenario), "--seed", "7", "--out", str(tmp_path / "run")]
    assert main(["--state-dir", str(stack.state_dir), *run]) == 0
    told_apart = []
    for dep in chain:
        after = reading(dep)
        n = round(after[0] - before[dep][0])
        spent = after[1] - before[dep][1]
        assert n >= 18, (dep, n)  # 3/s for 6 s, and a shopper's impatient retry if any
        expected, other = _drawn(dep, stack, 7, n), _drawn(dep, stack, 8, n)
        assert expected <= spent + 0.001 <= expected + n * OVERHEAD_S, (dep, n, spent, expected, other)
        if abs(other - expected) > n * OVERHEAD_S:
            told_apart.append(dep)
    assert told_apart, "the check can not fail: seed 8 draws what seed 7 does, within the overhead"
    for spec in stack.topology.processes:
        if spec.kind in TARGET_ROLES:
            answer = requests.get(f"{spec.endpoint.url}{TARGET_SEED_PATH}", timeout=5).json()
            assert answer == {"process": spec.name, "seed": 7}
