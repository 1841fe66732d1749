"""Seeded Poisson arrivals and a replayed access log, sent for real by the shoppers: the same
seed offers the same arrivals, another seed others, and a replay keeps its log's gaps."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from harness.load.arrivals import arrival_times
from harness.records.schema import read_requests
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
