"""Reset-aware counter increases on synthetic readings: restarts, resets, silent processes."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import harness.metrics.counters
from harness.config.scenarios import load_scenario
from harness.metrics.counters import ProcessReading, Reading, RunCounters, increase
from harness.records.summary import Summary
from harness.report.run_page import write_report
from harness.report.shootout import shootout_summary, write_shootout
from model import metric_names as names
from tests.unit.summaries import async_orders, lane_json

SERIES = (names.WORKER_MESSAGES_REDELIVERED, "async")
SINCE = 1000.0


def answer(started_at: float | None, value: float) -> ProcessReading:
    return ProcessReading(started_at=started_at, values={SERIES: value})


def test_a_steady_process_counts_last_minus_first() -> None:
    readings: list[Reading] = [{"w": answer(900, 5)}, {"w": answer(900, 9)}, {"w": answer(900, 12)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert (got.value, got.complete, got.restarted) == (7, True, ())


def test_a_reset_counts_the_new_value_from_zero_never_negative() -> None:
    # Raw last - first would be 3 - 10 = -7.
    readings: list[Reading] = [{"w": answer(None, 10)}, {"w": answer(None, 14)}, {"w": answer(None, 3)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert got.value == 4 + 3
    assert got.complete and got.restarted == ("w",)


def test_a_restart_that_climbed_past_the_old_value_is_seen_by_its_start_time() -> None:
    # Raw last - first would be 20 - 10 = 10; the new process counted 20 by itself.
    readings: list[Reading] = [{"w": answer(900, 10)}, {"w": answer(900, 12)}, {"w": answer(1010, 20)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert got.value == 2 + 20
    assert got.complete and got.restarted == ("w",)


def test_a_restart_across_an_unanswered_reading_is_known_by_start_time() -> None:
    readings: list[Reading] = [
        {"w": answer(900, 10)},
        {"w": None},
        {"w": answer(1010, 4)},
        {"w": answer(1010, 6)},
    ]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert (got.value, got.complete, got.restarted) == (6, True, ("w",))


def test_a_gap_without_start_times_is_incomplete() -> None:
    # 10 -> 15 across a gap: 5 more, or a restart that counted 15; no start time to tell.
    readings: list[Reading] = [{"w": answer(None, 10)}, {"w": None}, {"w": answer(None, 15)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert got.missing == ("w",)


def test_a_gap_with_the_same_start_time_is_complete() -> None:
    readings: list[Reading] = [{"w": answer(900, 10)}, {"w": None}, {"w": answer(900, 15)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert (got.value, got.complete) == (5, True)


def test_a_process_silent_at_the_end_makes_the_figure_incomplete() -> None:
    readings: list[Reading] = [
        {"a": answer(900, 1), "w": answer(900, 10)},
        {"a": answer(900, 3), "w": answer(900, 12)},
        {"a": answer(900, 4), "w": None},
    ]
    got = increase(readings, SERIES, processes=["a", "w"], since=SINCE)
    assert got.value == 3 + 2  # what could be seen, not more
    assert not got.complete and got.missing == ("w",)


def test_a_process_silent_at_the_start_that_ran_before_the_run_is_incomplete() -> None:
    readings: list[Reading] = [{"w": None}, {"w": answer(900, 10)}, {"w": answer(900, 12)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert got.missing == ("w",)


def test_a_process_that_never_answered_is_missing() -> None:
    readings: list[Reading] = [{"a": answer(900, 1)}, {"a": answer(900, 2)}]
    got = increase(readings, SERIES, processes=["a", "w"], since=SINCE)
    assert (got.value, got.missing) == (1, ("w",))


def test_a_process_appearing_mid_run_counts_everything_it_shows() -> None:
    readings: list[Reading] = [{}, {"w": None}, {"w": answer(1005, 3)}, {"w": answer(1005, 8)}]
    got = increase(readings, SERIES, processes=["w"], since=SINCE)
    assert (got.value, got.complete) == (8, True)


def test_a_process_without_the_series_counts_zero() -> None:
    readings: list[Reading] = [{"o": ProcessReading(started_at=900)}, {"o": ProcessReading(started_at=900)}]
    got = increase(readings, SERIES, processes=["o"], since=SINCE)
    assert (got.value, got.complete) == (0, True)


def test_run_counters_mark_each_figure_that_lacks_a_process() -> None:
    def proc(started_at: float, **values: float) -> ProcessReading:
        metric = {
            "attempts": names.DOWNSTREAM_CALL_ATTEMPTS,
            "orders": names.ORDER_REQUESTS,
            "redelivered": names.WORKER_MESSAGES_REDELIVERED,
        }
        return ProcessReading(
            started_at=started_at, values={(metric[k], "async"): v for k, v in values.items()}
        )

    readings: list[Reading] = [
        {
            "order-async": proc(900, orders=100, attempts=100),
            "worker-email": proc(900, attempts=50, redelivered=2),
        },
        {
            "order-async": proc(900, orders=110, attempts=110),
            "worker-email": proc(1010, attempts=5, redelivered=3),
        },
        {"order-async": proc(900, orders=120, attempts=120), "worker-email": None},
    ]
    figures = RunCounters.from_readings(
        readings, lanes={"async": ["order-async", "worker-email"]}, broker="rabbitmq", since=SINCE
    )
    assert figures.attempts["async"] == (20 + 5, 20)
    assert figures.broker["redelivered"] == 3 and figures.broker["name"] == "rabbitmq"
    assert figures.incomplete == {
        "retry_amplification.async": ["worker-email"],
        "broker.messages_lost": ["worker-email"],
        "broker.redelivered": ["worker-email"],
        "broker.duplicates": ["worker-email"],
        "broker.out_of_order": ["worker-email"],
    }
    assert figures.restarted == ["worker-email"]
    # The sync lane had no process answering for it in this reading set: nothing to lack.
    assert figures.attempts["sync"] == (0, 0)


def test_docstring_example() -> None:
    result = doctest.testmod(harness.metrics.counters)
    assert result.attempted > 0 and result.failed == 0


def test_the_report_marks_an_incomplete_figure(tmp_path: Path) -> None:
    lane = lane_json(requests=1, error_rate=0.0, throughput_rps=1.0)
    summary = {
        "scenario": "restart",
        "duration_s": 10.0,
        "t0": 0.0,
        "lanes": {"sync": lane, "async": lane},
        "retry_amplification": {"sync": 3.0, "async": 1.5},
        "broker": {"name": "rabbitmq", "redelivered": 3, "duplicates": 0},
        "counters": {
            "incomplete": {
                "retry_amplification.async": ["worker-email"],
                "broker.redelivered": ["worker-email"],
            },
            "restarted": ["worker-email"],
        },
        "passed": True,
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = write_report(tmp_path).read_text()
    assert "<td>1.50 (incomplete: no count from worker-email)</td>" in page
    assert "redelivered 3 (incomplete: no count from worker-email), duplicates 0" in page
    assert "<td>3.00</td>" in page  # the complete sync figure is not marked


def test_the_shootout_marks_a_broker_count_that_lacks_a_process(tmp_path: Path) -> None:
    scenario, _ = load_scenario("broker-shootout")
    summaries = []
    for name in scenario.brokers:
        summaries.append(
            {
                "scenario": "broker-shootout",
                "duration_s": 10.0,
                "passed": True,
                "t0": 0.0,
                "lanes": {"async": lane_json(orders=async_orders())},
                "broker": {
                    "name": name,
                    "messages_lost": 0,
                    "redelivered": 3,
                    "duplicates": 0,
                    "out_of_order": 0,
                },
                "counters": {
                    "incomplete": {"broker.redelivered": ["worker-email"]} if name == "kafka" else {},
                    "restarted": [],
                },
            }
        )
    summary = shootout_summary(scenario, [Summary.from_json(s) for s in summaries])
    rows = {row["broker"]: row for row in summary.brokers}
    assert rows["kafka"]["incomplete"] == ["redelivered"] and rows["rabbitmq"]["incomplete"] == []
    assert "redelivered 3 (incomplete)" in next(line for line in summary.reading if line.startswith("kafka"))
    page = write_shootout(tmp_path, summary).read_text()
    assert page.count("<td>3 (incomplete)</td>") == 1
