"""``doorbuster run`` of a broker shootout: the same load and faults on two brokers, one table."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli.main import main
from model.errors import ExitCode

SHOOTOUT = """
name: mini-shootout
brokers: [redis-streams, redis-pubsub]
stack: {time_scale: 0.2}  # the stack's latencies only: the load and the blip keep their times
load:
  stages:
    - {name: baseline, duration: 8s, rate: 4}
    - {name: after, duration: 14s, rate: 4}
  poll: {initial: 0.5s, max: 2s, give_up: 40s}
chaos:
  - {name: broker-blip, at: 9s, for: 4s, dependency: broker, lanes: async, type: down}
expectations:
  # 16 arrivals in the blip: no error among them bounds the rate under 19.4% at 95%, not under 1%
  - "async.error_rate < 25% during broker-blip"
drain_timeout: 40s
"""


def test_a_shootout_runs_each_broker_in_turn_and_tables_them(tmp_path: Path) -> None:
    scenario = tmp_path / "mini.yaml"
    scenario.write_text(SHOOTOUT)
    out, state = tmp_path / "run", tmp_path / "state"
    cli = ["--state-dir", str(state)]
    try:
        code = main([*cli, "run", str(scenario), "--out", str(out), "--base-port", "30000",
                     "--toxiproxy-port", "30474"])  # fmt: skip
    finally:
        main([*cli, "down"])
    assert code == ExitCode.OK
    rows = {r["broker"]: r for r in json.loads((out / "shootout.json").read_text())}
    assert list(rows) == ["redis-streams", "redis-pubsub"]
    for broker, row in rows.items():
        run = json.loads((out / broker / "summary.json").read_text())
        assert run["broker"]["name"] == broker  # each run really ran on its broker
        assert (out / broker / "report.html").stat().st_size > 1000
        assert row["accepted_p99_s"] is not None and row["fulfilment_p99_s"] is not None
        assert row["verdicts"] == "1/1"
        assert row["lost_orders"] == run["lanes"]["async"]["orders"]["lost"]
    # The durable broker kept everything through the blip; Pub/Sub's losses, if any, are
    # orders the ledger found unfinished, and the broker's own count is in the table beside.
    assert rows["redis-streams"]["lost_orders"] == 0 and rows["redis-streams"]["messages_lost"] == 0
    assert rows["redis-pubsub"]["messages_lost"] is not None
    page = (out / "report.html").read_text()
    assert 'href="redis-pubsub/report.html"' in page and "lost by broker" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["passed"] and len(summary["verdicts"]) == 2
