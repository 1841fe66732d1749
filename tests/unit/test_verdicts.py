"""Verdicts on made-up runs: decided only when the data decide them, undetermined (and why)
otherwise, and never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.analysis.inputs import FaultWindow, Row, RunInputs
from harness.analysis.summary import analyse
from harness.cli.main import main
from harness.config.scenarios import load_scenario
from model.errors import ConfigError, ExitCode
from model.expectations import parse_expectation
from tests.unit.scenarios import made_up_data, made_up_scenario


def _fault(applied: bool = True) -> FaultWindow:
    return FaultWindow(name="trigger", dependency="email", lanes=("sync", "async"), type="latency",
                       attributes={"latency": 1}, start=20, end=30, applied=applied)  # fmt: skip


def _verdicts(expectations: list[str], rows: list[Row], **over: Any) -> dict[str, dict[str, Any]]:
    scenario = made_up_scenario(expectations=expectations)
    inputs: dict[str, Any] = {
        "scenario": scenario, "rows": tuple(rows), "faults": (_fault(),), "load_end": 80.0,
        "async_statuses": {r.order_id: "fulfilled" for r in rows if r.lane == "async" and r.ok},
        "drains": {"trigger": 5.0},
    }  # fmt: skip
    inputs.update(over)
    summary = analyse(RunInputs(**inputs)).to_json()
    return {v["expectation"]: v for v in summary["verdicts"]}


def _checkouts(lane: str, times: list[float], wait: float, code: int) -> list[Row]:
    return [Row(t, t + wait, lane, "checkout", code, 0, f"{lane[0]}{i}-{t}") for i, t in enumerate(times)]


def test_a_dozen_samples_can_not_bound_a_p99() -> None:
    rows = _checkouts("sync", [i * 1.5 for i in range(12)], 0.2, 200)
    v = _verdicts(["sync.checkout.p99 < 1s at baseline"], rows)["sync.checkout.p99 < 1s at baseline"]
    assert v["outcome"] == "undetermined" and v["passed"] is False
    assert v["reason"] == "too few samples (n=12; a p99 needs at least 368 to bound it from above at 95%)"
    assert v["evidence"]["estimate"] == {"value": 0.2, "low": 0.2, "high": None, "n": 12}
    assert v["evidence"]["window"] == {"start_s": 0.0, "end_s": 20.0}


def test_ninety_nine_failures_and_one_fast_success_fail_a_p99_bound() -> None:
    rows = _checkouts("sync", [i * 0.2 for i in range(99)], 5.0, 504) + _checkouts("sync", [19.9], 0.05, 200)
    v = _verdicts(["sync.checkout.p99 < 2s at baseline"], rows)["sync.checkout.p99 < 2s at baseline"]
    assert v["outcome"] == "fail", v  # the shoppers waited 5 s for their failures


def test_a_bound_is_decided_when_the_interval_is_clear_of_it() -> None:
    times = [i / 20 for i in range(400)]  # 400 checkouts in the baseline's 20 s
    rows = [
        Row(t, t + 0.1 + (i % 100) / 250, "sync", "checkout", 200, 0, f"s{i}") for i, t in enumerate(times)
    ]
    verdicts = _verdicts(["sync.checkout.p99 < 1s at baseline", "sync.checkout.p99 > 0.6s at baseline",
                          "sync.checkout.p99 < 0.2s at baseline", "sync.checkout.p99 < 490ms at baseline"],
                         rows)  # fmt: skip
    assert [v["outcome"] for v in verdicts.values()] == ["pass", "fail", "fail", "undetermined"]
    straddled = verdicts["sync.checkout.p99 < 490ms at baseline"]["reason"]
    assert "straddles the bound 0.490s; more samples would decide it" in straddled


def test_no_lost_orders_is_undetermined_without_orders_or_with_every_order_failed() -> None:
    failed = _checkouts("async", [float(i) for i in range(40)], 0.1, 503)
    v = _verdicts(["no lost orders"], failed)["no lost orders"]
    assert v["outcome"] == "undetermined" and v["reason"].startswith("no order was accepted (40 checkouts)")
    accepted = _checkouts("async", [float(i) for i in range(40)], 0.1, 202)
    statuses = {r.order_id: "failed" for r in accepted}
    v = _verdicts(["no lost orders"], accepted, async_statuses=statuses)["no lost orders"]
    assert v["outcome"] == "undetermined"
    assert v["reason"] == "none of the 40 accepted orders was fulfilled (40 failed)"
    v = _verdicts(["no lost orders"], accepted)["no lost orders"]
    assert v["outcome"] == "pass" and v["evidence"]["orders"]["fulfilled"] == 40


def test_a_drain_with_no_orders_is_undetermined() -> None:
    rows = _checkouts("async", [float(i) for i in range(40, 60)], 0.1, 202)  # all after the fault
    v = _verdicts(["async backlog drains within 30s after trigger"], rows, drains={"trigger": 0.0})
    verdict = v["async backlog drains within 30s after trigger"]
    assert verdict["outcome"] == "undetermined"
    assert verdict["reason"] == "no async order was accepted before trigger ended: there was nothing to drain"


def test_throughput_over_a_window_without_load_is_undetermined() -> None:
    rows = _checkouts("sync", [i * 0.5 for i in range(40)], 0.1, 200)  # only in the baseline
    v = _verdicts(["sync.throughput < 5/s at rest", "sync.throughput > 1 at baseline"], rows)
    assert v["sync.throughput < 5/s at rest"]["outcome"] == "undetermined"
    assert v["sync.throughput < 5/s at rest"]["reason"] == "no sync checkout was intended in 20.0-80.0 s"
    assert v["sync.throughput > 1 at baseline"]["outcome"] == "pass"  # 40 in 20 s: [1.47, 2.72]/s


def test_a_fault_that_never_applied_leaves_its_verdicts_undetermined() -> None:
    rows = _checkouts("sync", [i * 0.1 for i in range(800)], 5.0, 504)
    expectations = ["sync.error_rate > 50% during trigger", "sync recovers within 30s after trigger"]
    verdicts = _verdicts(expectations, rows, faults=(_fault(applied=False),))
    for text in expectations:
        assert verdicts[text]["outcome"] == "undetermined"
        assert verdicts[text]["reason"] == "fault trigger was never applied"
        assert verdicts[text]["evidence"]["window" if "during" in text else "fault"]


def test_a_verdict_whose_evaluation_breaks_is_undetermined_and_the_summary_is_still_made() -> None:
    rows = _checkouts("sync", [i * 0.5 for i in range(40)], 0.1, 200)
    scenario = made_up_scenario(expectations=["no lost orders"])
    # Expectations written for another scenario: windows this run does not have.
    broken = scenario.model_copy(update={"expectations": (
        parse_expectation("sync.checkout.p50 < 1s during nowhere"),
        parse_expectation("sync recovers within 30s after rest"),
        parse_expectation("sync.checkout.p50 < 1s at baseline"),
    )})  # fmt: skip
    summary = analyse(
        RunInputs(scenario=broken, rows=tuple(rows), faults=(_fault(),), load_end=80.0)
    ).to_json()
    first, second, third = summary["verdicts"]
    assert first["outcome"] == "undetermined" and first["reason"] == "internal error: KeyError: 'nowhere'"
    assert second["outcome"] == "undetermined" and second["reason"] == "rest is not a chaos step of this run"
    assert third["outcome"] == "pass"
    assert summary["passed"] is False and summary["lanes"]["sync"]["requests"] == 40


@pytest.mark.parametrize(
    "expectation",
    ["sync.checkout.p99 < 500", "sync.error_rate < 5", "sync.throughput < 5%",
     "sync recovers within 30s after baseline", "sync recovers within 30s after rest",
     "async backlog drains within 60 after trigger"],
)  # fmt: skip
def test_loose_expectations_are_refused_with_exit_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expectation: str
) -> None:
    import yaml

    file = tmp_path / "loose.yaml"
    file.write_text(yaml.safe_dump(made_up_data(expectations=[expectation])))
    with pytest.raises(ConfigError):
        load_scenario(str(file))  # refused while reading, so the run below starts nothing
    code = main(["--state-dir", str(tmp_path / "state"), "run", str(file), "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE and "Traceback" not in captured.out + captured.err
    assert "expectations" in captured.err and str(file) in captured.err
    assert not (tmp_path / "state" / "supervisor.json").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "value", "successes_only"),
    [("sync.error_rate < 0.05 fraction", 0.05, False), ("sync.error_rate < 5%", 0.05, False),
     ("sync.checkout.p99 of successes < 500ms", 0.5, True), ("async.fulfillment.p95 < 2s", 2.0, False),
     ("sync.goodput > 3/s", 3.0, False)],
)  # fmt: skip
def test_strict_units_parse(text: str, value: float, successes_only: bool) -> None:
    e = parse_expectation(text)
    assert e.value == value and e.successes_only is successes_only


def test_of_successes_leaves_failures_out_of_a_latency() -> None:
    rows = _checkouts("sync", [i / 20 for i in range(200)], 5.0, 504) + _checkouts(
        "sync", [i / 20 + 0.01 for i in range(200)], 0.1, 200
    )
    texts = ["sync.checkout.p95 < 1s at baseline", "sync.checkout.p95 of successes < 1s at baseline"]
    verdicts = _verdicts(texts, rows)
    assert [verdicts[t]["outcome"] for t in texts] == ["fail", "pass"]


def test_report_and_terminal_show_undetermined_apart_with_its_reason() -> None:
    from rich.console import Console

    from harness.cli.verdicts import verdict_count, verdict_lines
    from harness.report.parts import run_status, verdict_table

    rows = _checkouts("sync", [i * 1.5 for i in range(12)], 0.2, 200)
    texts = ["sync.checkout.p99 < 1s at baseline", "sync.checkout.p50 < 0.1s at baseline"]
    scenario = made_up_scenario(expectations=texts)
    summary = analyse(RunInputs(scenario=scenario, rows=tuple(rows), faults=(_fault(),), load_end=80.0))
    page = verdict_table(summary.verdicts)
    assert "<tr class=undetermined><td>UNDETERMINED</td>" in page and "a p99 needs at least 368" in page
    assert "<tr class=fail><td>FAIL</td>" in page
    assert run_status(summary.verdicts, passed=summary.passed)[0] == "FAILED"
    assert run_status(summary.verdicts[:1], passed=summary.passed)[0] == "UNDETERMINED"
    console = Console(width=200, record=True)
    console.print(verdict_lines(summary))
    text = console.export_text()
    assert "UNDETERMINED" in text and "FAIL" in text and "needs at least 368" in text
    assert verdict_count(summary.verdicts) == (
        "1 expectation(s) failed, 1 undetermined (their reasons say what would decide them) (of 2)"
    )


def test_a_p99_against_a_baseline_of_a_dozen_requests_is_undetermined() -> None:
    """The issue's 20 s black-friday: +31.8% over a baseline of about a dozen requests was a FAIL."""
    rows = _checkouts("async", [i * 1.5 for i in range(12)], 0.5, 202)
    rows += _checkouts("async", [20 + i * 0.8 for i in range(12)], 0.66, 202)
    text = "async.checkout.p99 at most 20% above baseline during trigger"
    v = _verdicts([text], rows)[text]
    assert v["outcome"] == "undetermined", v
    assert v["reason"] == (
        "in the window, too few samples (n=12; a p99 needs at least 368 to bound it from above at 95%)"
    )
    assert v["evidence"]["baseline"]["estimate"]["n"] == 12 and "(+32.0%)" in v["observed"]
