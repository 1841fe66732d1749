"""Made-up run directories written with the run's own record types (requests.jsonl,
ledger.json, scenario.json), for the commands that read a run from its files alone."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.analysis.recorded import write_run_scenario
from harness.records.schema import RequestRecord, RunLedger
from model.scenario import Scenario

__all__ = ["T0", "steady_records", "steady_scenario", "write_run_dir"]

T0 = 1_700_000_000.0


def steady_scenario(name: str = "steady-made-up", *, rate: float = 10, seconds: float = 60,
                    expectations: Sequence[str] = (), lanes: Sequence[str] = ("sync",)) -> Scenario:  # fmt: skip
    """One steady stage, no faults."""
    return Scenario.model_validate(
        {
            "name": name,
            "load": {"lanes": list(lanes), "stages": [{"name": "steady", "duration": seconds, "rate": rate}]},
            "expectations": list(expectations),
        }
    )


def steady_records(
    lane: str, count: int, spacing_s: float, latency: Callable[[int], float], failed: Callable[[int], bool]
) -> list[RequestRecord]:
    """``count`` checkouts ``spacing_s`` apart; the i-th takes ``latency(i)`` and fails (503)
    when ``failed(i)``."""
    return [
        RequestRecord.made(
            lane=lane,
            kind="checkout",
            intended_start=T0 + i * spacing_s,
            start=T0 + i * spacing_s,
            end=T0 + i * spacing_s + latency(i),
            status=503 if failed(i) else 200,
            order_id=f"{lane}{i}",
        )
        for i in range(count)
    ]


def write_run_dir(run_dir: Path, scenario: Scenario, records: Sequence[RequestRecord]) -> Path:
    """A finished run's directory: its request log, ledger and the scenario it judged."""
    run_dir.mkdir(parents=True)
    (run_dir / "requests.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    ledger = RunLedger(
        t0=T0, started=T0 - 1, load_end=T0 + scenario.duration_s, drained_at=None, interrupted=False,
        drain_cut_short=False, async_statuses={}, side_effects={}, drains={}, attempts={},
    )  # fmt: skip
    (run_dir / "ledger.json").write_text(ledger.to_json())
    write_run_scenario(run_dir, scenario)
    return run_dir
