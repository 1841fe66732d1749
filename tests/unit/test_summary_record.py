"""summary.json's one typed definition (harness.records.summary): what ``analyse`` and the run
write reads back to the very same JSON, and a malformed file is refused with its path and why."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.analysis.inputs import FaultWindow, Row, RunInputs
from harness.analysis.recorded import judged_summary
from harness.analysis.summary import analyse
from harness.cli.main import main
from harness.records.generator import GeneratorSample
from harness.records.schema import AttemptTimeline
from harness.records.summary import Summary, read_summary
from model.errors import ConfigError, ExitCode
from tests.unit.run_dirs import steady_records, steady_scenario, write_run_dir
from tests.unit.scenarios import made_up_scenario

FAULT = FaultWindow(name="trigger", dependency="email", lanes=("sync", "async"), type="latency",
                    attributes={"latency": 1000.0}, start=20, end=30)  # fmt: skip


def _made_up_run() -> RunInputs:
    """Both lanes, orders with their side effects, a fault, a timeline and the generator's health:
    every sub-record of the summary has something in it."""
    rows = []
    for i in range(160):
        t = i * 0.5
        ok = t < 20 or t > 40
        rows.append(
            Row(t, t + (0.2 if ok else 5.0), "sync", "checkout", 200 if ok else 504, 0, f"s{i}", t + 0.01)
        )
        rows.append(Row(t, t + 0.4, "async", "checkout", 202, 0, f"a{i}", t + 0.01))
        rows.append(Row(t, t + 3.0, "async", "fulfillment", 200, 0, f"a{i}", t + 0.4))
    times = [float(t) for t in range(0, 81, 10)]
    samples = tuple(
        GeneratorSample(worker="0", t=t, window_s=1.0, sends=2, send_lag_p99_s=0.002, send_lag_max_s=0.004,
                        loop_lag_max_s=0.001, cpu_share=0.3, due=int(2 * t), sent=int(2 * t), dropped=0,
                        never_sent=0, stopped=t == 80.0)
        for t in times
    )  # fmt: skip
    scenario = made_up_scenario(
        expectations=[
            "sync.checkout.p99 < 1s at baseline",
            "no lost orders",
            "sync recovers within 30s after trigger",
        ]
    )
    return RunInputs(
        scenario=scenario, rows=tuple(rows), faults=(FAULT,), load_end=80.0,
        async_statuses={f"a{i}": "fulfilled" for i in range(160)},
        side_effects={"sync": {"payment": {f"s{i}": 1 for i in range(40)}}, "async": {"email": {"a1": 2}}},
        attempts={"sync": (480.0, 160.0), "async": (160.0, 160.0)}, drains={"trigger": 3.5},
        attempt_timeline=AttemptTimeline(
            times=times, attempts={"sync": {"email": [3.0 * t for t in times]}}
        ),
        generator=samples,
    )  # fmt: skip


def test_analyse_reads_back_to_the_same_json() -> None:
    summary = analyse(_made_up_run())
    written = json.dumps(summary.to_json(), indent=2)
    # Every sub-record holds something: the round trip below is not of empty parts.
    assert summary.ladder["sync"].amplification.during is not None
    assert summary.metastability["sync"].evidence is not None and summary.generator is not None
    assert summary.lanes["async"].orders is not None and summary.lanes["async"].fulfillment_ms is not None
    read = Summary.from_json(json.loads(written))
    assert json.dumps(read.to_json(), indent=2) == written
    assert read == dataclasses.replace(summary)


def test_a_runs_summary_reads_back_to_the_same_json(tmp_path: Path) -> None:
    scenario = steady_scenario(expectations=["sync.checkout.p50 < 1s at steady"])
    records = steady_records("sync", 300, 0.2, lambda i: 0.1 + (i % 7) / 100, lambda i: i % 50 == 0)
    run_dir = write_run_dir(tmp_path / "run", scenario, records)
    summary = judged_summary(run_dir)
    assert summary.run is not None and list(summary.to_json())[-1] == "drained_after_load_s"
    (run_dir / "summary.json").write_text(json.dumps(summary.to_json(), indent=2))
    assert (
        json.dumps(read_summary(run_dir / "summary.json").to_json(), indent=2)
        == (run_dir / "summary.json").read_text()
    )


def test_a_malformed_summary_is_refused_naming_the_file_and_the_field(tmp_path: Path) -> None:
    scenario = steady_scenario(expectations=["sync.checkout.p50 < 1s at steady"])
    records = steady_records("sync", 100, 0.2, lambda i: 0.1, lambda i: False)
    run_dir = write_run_dir(tmp_path / "run", scenario, records)
    data = judged_summary(run_dir).to_json()
    data["lanes"]["sync"]["requests"] = "many"
    data["verdicts"][0]["outcome"] = "maybe"
    path = run_dir / "summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as refused:
        read_summary(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: not a run's summary: ")
    assert "lanes.sync.requests: Input should be a valid integer" in message
    assert "verdicts.0.outcome: Input should be 'pass', 'fail' or 'undetermined'" in message
    path.write_text(
        json.dumps({**judged_summary(run_dir).to_json(), "lanes": {"sync": {"requests": 1}}, "extra": 1})
    )
    with pytest.raises(ConfigError, match=r"lanes\.sync\.errors: Field required.*extra: Unexpected keyword"):
        read_summary(path)


def test_doorbuster_report_of_a_malformed_summary_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = steady_scenario(expectations=["sync.checkout.p50 < 1s at steady"])
    run_dir = write_run_dir(
        tmp_path / "run", scenario, steady_records("sync", 50, 0.2, lambda i: 0.1, lambda i: False)
    )
    data = judged_summary(run_dir).to_json()
    del data["passed"]
    (run_dir / "summary.json").write_text(json.dumps(data))
    assert main(["--state-dir", str(tmp_path / "state"), "report", str(run_dir)]) == ExitCode.USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert "summary.json: not a run's summary: passed: Field required" in err
