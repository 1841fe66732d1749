"""``doorbuster judge`` on a made-up run directory, written with the run's own record types:
verdicts from the files alone, with no stack (the state dir given is a file no stack can use)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.recorded import recorded_run, summarise, write_run_scenario
from harness.cli.main import main
from harness.faults.timeline import FaultRecord
from harness.records.schema import RequestRecord, RunLedger
from model.errors import ExitCode
from model.scenario import Scenario

T0 = 1_700_000_000.0
SCENARIO = Scenario.model_validate(
    {
        "name": "made-up",
        "load": {"stages": [{"name": "steady", "duration": 30, "rate": 2}]},
        "chaos": [{"name": "slow", "at": 10, "for": 10, "dependency": "email", "type": "latency",
                   "attributes": {"latency": 1000}}],
        "expectations": ["no lost orders", "sync.error_rate > 50% during slow"],
    }
)  # fmt: skip
ASYNC_DEPS = ("inventory", "warehouse", "email", "analytics")


def _records() -> list[RequestRecord]:
    records = []
    for i in range(60):  # 2 arrivals a second for 30 s; sync fails while the fault is in force
        t = T0 + i * 0.5
        failing = 10.2 <= i * 0.5 < 20.1
        records.append(
            RequestRecord.made(lane="sync", kind="checkout", intended_start=t, start=t, end=t + 0.3,
                               status=504 if failing else 200, order_id=f"s{i}")
        )  # fmt: skip
        records.append(
            RequestRecord.made(lane="async", kind="checkout", intended_start=t, start=t, end=t + 0.1,
                               status=202, order_id=f"a{i}")
        )  # fmt: skip
        records.append(
            RequestRecord.made(lane="async", kind="fulfillment", intended_start=t, start=t + 0.1,
                               end=t + 2, status=200, order_id=f"a{i}")
        )  # fmt: skip
    return records


def _made_up_run(root: Path) -> Path:
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "requests.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in _records()))
    fault = FaultRecord(name="slow", dependency="email", lanes=("sync", "async"), type="latency",
                        attributes={"latency": 1000}, planned_start_s=10, planned_end_s=20,
                        requested_at=T0 + 10, started_at=T0 + 10.2, removal_requested_at=T0 + 20,
                        ended_at=T0 + 20.1)  # fmt: skip
    (run_dir / "chaos.json").write_text(json.dumps({"t0": T0, "faults": [fault.as_json()]}))
    ledger = RunLedger(
        t0=T0, started=T0 - 1, load_end=T0 + 31, drained_at=T0 + 34, interrupted=False,
        drain_cut_short=False, async_statuses={f"a{i}": "fulfilled" for i in range(60)},
        side_effects={"async": {dep: {f"a{i}": 1 for i in range(60)} for dep in ASYNC_DEPS}, "sync": {}},
        drains={"slow": 1.5}, attempts={"sync": (70.0, 60.0), "async": (240.0, 60.0)},
    )  # fmt: skip
    (run_dir / "ledger.json").write_text(ledger.to_json())
    write_run_scenario(run_dir, SCENARIO)
    (run_dir / "series.json").write_text(json.dumps({"panels": {}}))
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return _made_up_run(tmp_path)


def _judge(tmp_path: Path, *args: str) -> int:
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    return main(["--state-dir", str(no_stack), "judge", *args])


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


def _verdicts(out: str) -> list[dict[str, Any]]:
    printed = json.loads(out)
    assert set(printed) == {"scenario", "passed", "verdicts"}
    return list(printed["verdicts"])


def test_judge_decides_the_runs_verdicts_from_its_files_and_writes_summary_and_report(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _judge(tmp_path, str(run_dir)) == ExitCode.OK, capsys.readouterr().err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [(v["expectation"], v["outcome"]) for v in summary["verdicts"]] == [
        ("no lost orders", "pass"),
        ("sync.error_rate > 50% during slow", "pass"),
    ]
    assert summary["passed"] is True and summary["t0"] == T0
    assert summary["drained_after_load_s"] == 3.0 and summary["chaos"][0]["start_s"] == 10.2
    assert "made-up" in (run_dir / "report.html").read_text()
    # What the run itself would have written: the same function on the same records.
    ledger = RunLedger.model_validate_json((run_dir / "ledger.json").read_text())
    assert summary == json.loads(
        json.dumps(summarise(SCENARIO, recorded_run(run_dir, SCENARIO), ledger).to_json())
    )


def test_judge_json_prints_the_verdicts_and_writes_nothing(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(run_dir)
    assert _judge(tmp_path, str(run_dir), "--json") == ExitCode.OK
    verdicts = _verdicts(capsys.readouterr().out)
    assert _files(run_dir) == before
    assert [v["outcome"] for v in verdicts] == ["pass", "pass"]
    assert verdicts[1]["observed"]  # the evidence, not just the outcome


def test_judge_with_another_file_decides_its_expectations_against_the_recorded_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    # Its load differs (unscaled, as a shipped file would be): only its expectations count.
    other.write_text(
        "name: other\nload: {stages: [{name: steady, duration: 300, rate: 20}]}\n"
        "chaos: [{name: slow, at: 100, for: 100, dependency: email, type: latency, "
        "attributes: {latency: 5}}]\n"
        'expectations: ["sync.error_rate < 10% during slow", "async.error_rate < 50% during slow"]\n'
    )
    code = _judge(tmp_path, str(run_dir), "--scenario", str(other), "--json")
    verdicts = _verdicts(capsys.readouterr().out)
    assert code == ExitCode.EXPECTATION_FAILED
    assert [(v["expectation"], v["outcome"]) for v in verdicts] == [
        ("sync.error_rate < 10% during slow", "fail"),
        ("async.error_rate < 50% during slow", "pass"),
    ]


def test_another_file_judges_a_time_scaled_run_at_the_runs_scale(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run made with --time-scale 0.5 ran the file's experiment in half its time: the file's
    "within 2s" is judged as the run's own expectations were, as "within 1s"."""
    write_run_scenario(run_dir, SCENARIO.model_copy(update={"time_scale": 0.5}))
    other = tmp_path / "other.yaml"
    other.write_text(
        "name: other\nload: {stages: [{name: steady, duration: 300, rate: 20}]}\n"
        "chaos: [{name: slow, at: 100, for: 100, dependency: email, type: latency, "
        "attributes: {latency: 5}}]\n"
        'expectations: ["async backlog drains within 2s after slow"]\n'
    )
    code = _judge(tmp_path, str(run_dir), "--scenario", str(other), "--json")
    verdicts = _verdicts(capsys.readouterr().out)
    # The run's drain took 1.5 s: inside 2 s, outside the 1 s that 2 s means at half the time.
    assert [(v["expectation"], v["outcome"]) for v in verdicts] == [
        ("async backlog drains within 1s after slow", "fail")
    ]
    assert code == ExitCode.EXPECTATION_FAILED


def test_an_expectation_about_a_window_the_run_did_not_have_is_refused_with_exit_2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(
        "name: other\nload: {stages: [{name: rush, duration: 30, rate: 2}]}\n"
        'expectations: ["sync.error_rate < 10% during rush"]\n'
    )
    before = _files(run_dir)
    code = _judge(tmp_path, str(run_dir), "--scenario", str(other))
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE, err
    assert str(other) in err and "'rush'" in err and "Traceback" not in err
    assert _files(run_dir) == before


@pytest.mark.parametrize("name", ["ledger.json", "scenario.json", "requests.jsonl", "chaos.json"])
def test_a_run_directory_lacking_or_spoiling_a_file_is_refused_naming_it(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    (run_dir / name).write_text("[1, 2]\n")
    code = _judge(tmp_path, str(run_dir), "--json")
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE, err
    assert str(run_dir / name) in err and "Traceback" not in err
    (run_dir / name).unlink()
    # A run that sent nothing has no log, one without a timeline no chaos.json; the rest is needed.
    if name not in ("requests.jsonl", "chaos.json"):
        assert _judge(tmp_path, str(run_dir), "--json") == ExitCode.USAGE
        assert f"{run_dir / name}: no such file" in capsys.readouterr().err


def test_judge_of_a_missing_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _judge(tmp_path, str(tmp_path / "nowhere")) == ExitCode.USAGE
    assert f"{tmp_path / 'nowhere'}: not a directory" in capsys.readouterr().err


def test_a_shootouts_directory_is_refused_saying_to_judge_each_brokers_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shootout = tmp_path / "shootout"
    shootout.mkdir()
    run_dir.rename(shootout / "rabbitmq")
    assert _judge(tmp_path, str(shootout)) == ExitCode.USAGE
    assert "a broker shootout's directory; judge each broker's run in it" in capsys.readouterr().err
    assert _judge(tmp_path, str(shootout / "rabbitmq"), "--json") == ExitCode.OK
