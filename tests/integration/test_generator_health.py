"""Generator health in a real run: every generator process (each worker, or the single
process) writes its samples to ``generator.jsonl`` through the master, with figures that
add up, and the master's exporter has each worker's ``doorbuster_generator_*`` series.

Real Locust against a trivial HTTP server on loopback; run inside ``unshare --net``.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.records.generator import GeneratorSample, read_generator_samples
from harness.records.schema import read_requests
from model import metric_names as names
from tests.integration.short_run import (
    open_model_env,
    orders_server,
    scraped_distributed_run,
    start_locust,
    stop_all,
)

RATE, SECONDS = 20.0, 5.0


def _check_each_worker(samples: list[GeneratorSample], workers: list[str], run_dir: Path) -> None:
    """Plausible figures for each worker, and arrivals that add up to the request log's."""
    assert sorted({s.worker for s in samples}) == workers, samples
    arrivals = sum(1 for r in read_requests(run_dir / "requests.jsonl") if r.kind == "checkout")
    finals = []
    for worker in workers:
        mine = [s for s in samples if s.worker == worker]
        assert len(mine) >= SECONDS - 1, mine  # about one a second while the test ran
        assert all(0.0 <= s.loop_lag_max_s < 1.0 and 0.0 < s.cpu_share < 2.0 for s in mine), mine
        assert all(s.send_lag_p99_s is None or 0.0 <= s.send_lag_p99_s < 0.5 for s in mine), mine
        assert [s.t for s in mine] == sorted(s.t for s in mine)
        final = mine[-1]
        assert final.stopped and not any(s.stopped for s in mine[:-1]), mine
        assert (final.due, final.dropped, final.never_sent) == (final.sent, 0, 0), final
        assert sum(s.sends for s in mine) == final.sent
        finals.append(final)
    assert sum(f.due for f in finals) == arrivals == RATE * SECONDS


def test_two_workers_each_write_their_health_and_export_it(tmp_path: Path) -> None:
    with orders_server(0.0) as (url, _):
        page = scraped_distributed_run(tmp_path, url, 2, rate=RATE, seconds=SECONDS, base=21600)
    _check_each_worker(read_generator_samples(tmp_path / "generator.jsonl"), ["0", "1"], tmp_path)

    series = {
        (sample.name, sample.labels.get("worker"))
        for sample in page.samples
        if sample.name.startswith("doorbuster_generator_")
    }
    for name in (
        names.GENERATOR_EVENT_LOOP_LAG,
        names.GENERATOR_CPU_SHARE,
        names.GENERATOR_ARRIVALS_DUE,
        names.GENERATOR_ARRIVALS_SENT,
        names.GENERATOR_ARRIVALS_NEVER_SENT,
        names.GENERATOR_SEND_LAG + "_count",
    ):
        assert {(name, "0"), (name, "1")} <= series, (name, sorted(series))


def test_a_single_process_writes_its_own_health(tmp_path: Path) -> None:
    with orders_server(0.0) as (url, _):
        env = open_model_env(tmp_path, url, 1, rate=RATE, seconds=SECONDS)
        proc = start_locust(["--headless", "--only-summary"], env, tmp_path / "locust.log")
        try:
            proc.wait(SECONDS + 60)
        finally:
            stop_all([proc])
    assert proc.returncode == 0, (tmp_path / "locust.log").read_text()[-2000:]
    samples = read_generator_samples(tmp_path / "generator.jsonl")
    _check_each_worker(samples, ["0"], tmp_path)
    assert json.loads((tmp_path / "generator.jsonl").read_text().splitlines()[0])["worker"] == "0"
