"""The analysis on made-up runs, where the right answer is known."""

from __future__ import annotations

from harness.analysis.estimates import percentile
from harness.analysis.figures import goodput_series
from harness.analysis.inputs import FaultWindow, Row, RunInputs
from harness.analysis.summary import analyse
from tests.unit.scenarios import made_up_scenario

SCENARIO = made_up_scenario(
    expectations=[
        "sync.error_rate > 50% during trigger",
        "sync.checkout.p50 < 2s at baseline",
        "async.checkout.p50 within 20% of baseline during trigger",
        "sync does not recover within 40s after trigger",
        "async recovers within 40s after trigger",
        "async backlog drains within 15s after trigger",
        "no lost orders",
        "no duplicate side effects",
    ]
)
FAULT = FaultWindow(name="trigger", dependency="email", lanes=("sync", "async"), type="latency",
                    attributes={"latency": 1}, start=20, end=30, applied=True)  # fmt: skip


# sync: orders s0-s39 were confirmed; s0 and s1 were charged twice, s100 (failed) once;
# async: every fulfilled order's four side effects applied once, but a7's email twice.
SIDE_EFFECTS = {
    "sync": {"payment": {**{f"s{i}": 1 for i in range(40)}, "s0": 2, "s1": 2, "s100": 1}},
    "async": {
        dep: {f"a{i}": 1 for i in range(160)} for dep in ("inventory", "warehouse", "email", "analytics")
    },
}
SIDE_EFFECTS["async"]["email"]["a7"] = 2


def _rows() -> list[Row]:
    rows = []
    for i in range(160):  # 2 per second per lane for 80 s
        t = i * 0.5
        sync_ok = t < 20  # the sync lane fails from the trigger on, and never comes back
        rows.append(
            Row(t, t + (1.9 if sync_ok else 5.0), "sync", "checkout", 200 if sync_ok else 504, 0, f"s{i}")
        )
        rows.append(Row(t, t + 0.4, "async", "checkout", 202, 0, f"a{i}"))
        rows.append(Row(t, t + 3.0, "async", "fulfillment", 200, 0, f"a{i}"))
    return rows


def _inputs(**over: object) -> RunInputs:
    base = dict(
        scenario=SCENARIO, rows=tuple(_rows()), faults=(FAULT,), load_end=80.0,
        async_statuses={f"a{i}": "fulfilled" for i in range(160)},
        side_effects=SIDE_EFFECTS, attempts={"sync": (1500.0, 160.0), "async": (800.0, 160.0)},
        drains={"trigger": 7.5},
    )  # fmt: skip
    base.update(over)
    return RunInputs(**base)  # type: ignore[arg-type]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2
    assert percentile([1, 2, 3, 4], 0.99) == 4
    assert percentile(list(range(1, 101)), 0.95) == 95


def test_summary_has_the_fields_and_the_right_numbers() -> None:
    summary = analyse(_inputs()).to_json()
    sync, async_ = summary["lanes"]["sync"], summary["lanes"]["async"]
    assert sync["requests"] == 160 and sync["errors"] == 120
    assert sync["error_rate"] == 0.75
    assert sync["latency_ms"]["p50"] == 5000.0  # 120 of 160 shoppers waited 5 s for a failure
    assert sync["latency_ok_ms"]["p50"] == 1900.0
    assert async_["latency_ms"]["p99"] == 400.0
    assert async_["fulfillment_ms"]["p50"] == 3000.0
    assert async_["orders"] == {
        "accepted": 160, "fulfilled": 160, "failed": 0, "lost": 0, "in_flight": 0,
        "duplicate_side_effects": 1, "missing_side_effects": 0,
    }  # fmt: skip
    assert sync["orders"] == {
        "confirmed": 40, "failed": 120, "failed_with_side_effects": 1, "charged_but_failed": 1,
        "duplicate_side_effects": 2, "missing_side_effects": 0,
    }  # fmt: skip
    assert summary["retry_amplification"] == {"sync": 9.375, "async": 5.0}
    assert summary["chaos"][0]["name"] == "trigger"
    verdicts = {v["expectation"]: v["passed"] for v in summary["verdicts"]}
    assert verdicts.pop("no duplicate side effects") is False  # a7's email went out twice
    assert all(verdicts.values()), summary["verdicts"]
    assert summary["passed"] is False
    assert summary["metastability"]["sync"]["recovered"] is False
    assert summary["metastability"]["async"]["recovered"] is True
    assert any("metastable" in line for line in summary["reading"])
    assert any("100% of sync checkouts failed" in line for line in summary["reading"])
    assert any(
        "1 shoppers were charged for an order they were told had failed" in line
        for line in summary["reading"]
    )


def test_lost_orders_and_a_slow_drain_fail_their_verdicts() -> None:
    statuses = {f"a{i}": "fulfilled" for i in range(158)} | {"a158": "accepted"}
    summary = analyse(_inputs(async_statuses=statuses, drains={"trigger": None})).to_json()
    verdicts = {v["expectation"]: v for v in summary["verdicts"]}
    assert summary["lanes"]["async"]["orders"]["lost"] == 2  # one stuck, one never stored
    assert not verdicts["no lost orders"]["passed"]
    assert not verdicts["async backlog drains within 15s after trigger"]["passed"]
    assert summary["passed"] is False


def test_within_of_baseline_holds_both_ways_and_at_most_above_only_upwards() -> None:
    """A lane faster during a fault than in a noisy baseline is not worse off: only the
    two-sided form fails it."""
    # 40 arrivals a second: enough for a p99's interval to be bounded on both sides
    rows = [Row(t, t + (0.5 if t < 20 else 0.3), "async", "checkout", 202, 0, f"a{i}")
            for i, t in enumerate(i / 40 for i in range(1200))]  # fmt: skip
    scenario = made_up_scenario(
        expectations=[
            "async.checkout.p99 within 20% of baseline during trigger",
            "async.checkout.p99 at most 20% above baseline during trigger",
            "async.checkout.p99 at most 20% above baseline at baseline",
        ]
    )
    summary = analyse(_inputs(scenario=scenario, rows=tuple(rows))).to_json()
    assert [v["passed"] for v in summary["verdicts"]] == [False, True, True]
    assert summary["verdicts"][1]["observed"] == (
        "0.300s [0.300s, 0.300s] n=400 vs baseline 0.500s [0.500s, 0.500s] n=800 (-40.0%)"
    )


def test_an_order_unfinished_when_the_user_stopped_waiting_for_the_drain_is_in_flight_not_lost() -> None:
    statuses = {f"a{i}": "fulfilled" for i in range(157)} | {"a157": "accepted", "a158": "accepted"}
    summary = analyse(_inputs(async_statuses=statuses, drain_cut_short=True)).to_json()
    orders = summary["lanes"]["async"]["orders"]
    assert (orders["lost"], orders["in_flight"]) == (1, 2)  # a159 was never stored: lost all the same
    assert any(
        "2 were still in flight when the wait for the drain was stopped" in line
        for line in summary["reading"]
    )


def test_goodput_counts_successes_by_completion_second() -> None:
    rows = [Row(0, 0.5, "sync", "checkout", 200, 0, "a"), Row(0, 1.2, "sync", "checkout", 200, 0, "b"),
            Row(0, 1.4, "sync", "checkout", 503, 0, "c")]  # fmt: skip
    assert goodput_series(rows, "sync", 3) == [1.0, 1.0, 0.0]
