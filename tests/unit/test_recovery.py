"""Recovery measured per offered arrival, on made-up runs whose right answer is known.

Each run: 4 arrivals/s per lane for 120 s, a 30 s baseline, a trigger applied from 30 s to
40 s, and a 40 s observation window after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.analysis.inputs import FaultWindow, Row, RunInputs
from harness.analysis.summary import analyse
from model.scenario import Scenario
from tests.unit.scenarios import made_up_scenario

RATE = 4


def _scenario(*expectations: str) -> Scenario:
    return made_up_scenario(
        baseline_s=30, rest_s=90, rate=RATE,
        metastability={"window": 40, "fraction": 0.8},  # smoothing: the default 5 s
        impatient={"timeout": 5, "retries": 1}, expectations=expectations,
    )  # fmt: skip


def _fault(**over: Any) -> FaultWindow:
    fields: dict[str, Any] = dict(
        name="trigger", dependency="email", lanes=("sync", "async"), type="latency",
        attributes={"latency": 1}, start=30.0, end=40.0, applied=True,
    )  # fmt: skip
    fields.update(over)
    return FaultWindow(**fields)


def _sync(
    ok: Callable[[float], bool], *, until: float = 120, rate: float = RATE, retry: bool = False
) -> list[Row]:
    """One sync arrival every 1/rate s; a failed one times out (and is retried once if asked)."""
    rows = []
    for i in range(int(until * rate)):
        t = i / rate
        if ok(t):
            rows.append(Row(t, t + 1.0, "sync", "checkout", 200, 0, f"s{i}"))
        elif retry:
            rows.append(Row(t, t + 5.0, "sync", "checkout", 0, 0, ""))
            rows.append(Row(t, t + 10.0, "sync", "checkout", 0, 1, ""))
        else:
            rows.append(Row(t, t + 5.0, "sync", "checkout", 504, 0, f"s{i}"))
    return rows


def _run(
    rows: list[Row], *expectations: str, fault: FaultWindow | None = None, load_end: float = 120
) -> dict[str, Any]:
    inputs = RunInputs(
        scenario=_scenario(*expectations), rows=tuple(rows), faults=(fault or _fault(),), load_end=load_end
    )
    return analyse(inputs).to_json()


def _verdict(summary: dict[str, Any], text: str) -> dict[str, Any]:
    return next(v for v in summary["verdicts"] if v["expectation"] == text)


def test_no_success_before_the_trigger_is_undetermined_not_recovered() -> None:
    summary = _run(_sync(lambda t: False), "sync recovers within 40s after trigger")
    assert not _verdict(summary, "sync recovers within 40s after trigger")["passed"]  # 0 >= 0.8 x 0 no more
    sync = summary["metastability"]["sync"]
    assert sync["outcome"] == "undetermined" and "nothing to recover to" in sync["reason"]


def test_a_flush_of_queued_requests_after_the_fault_is_not_a_recovery() -> None:
    rows = _sync(lambda t: t < 30)
    # the trigger's arrivals were queued and all answered in the two seconds after its removal,
    # while every new arrival still fails
    rows = [
        Row(r.intended, 40.0 + (r.intended - 30) / 5, "sync", "checkout", 200, 0, r.order_id)
        if 30 <= r.intended < 40
        else r
        for r in rows
    ]
    summary = _run(rows, "sync recovers within 40s after trigger")
    assert not _verdict(summary, "sync recovers within 40s after trigger")["passed"]
    sync = summary["metastability"]["sync"]
    assert sync["outcome"] == "metastable" and sync["recovery_s"] is None
    assert sync["evidence"]["succeeded"][:5] == [0] * 5


def test_a_collapse_after_a_brief_return_is_not_a_recovery() -> None:
    summary = _run(_sync(lambda t: t < 30 or 40 <= t < 50), "sync recovers within 40s after trigger")
    assert not _verdict(summary, "sync recovers within 40s after trigger")["passed"]
    sync = summary["metastability"]["sync"]
    assert sync["outcome"] == "not_recovered" and "then below it again" in sync["reason"]


def test_a_lane_that_collapsed_again_recovered_only_after_the_collapse() -> None:
    summary = _run(
        _sync(lambda t: t < 30 or 40 <= t < 50 or t >= 60),
        "sync recovers within 15s after trigger",
        "sync recovers within 40s after trigger",
    )
    assert summary["metastability"]["sync"]["recovery_s"] == 20.0
    assert not _verdict(summary, "sync recovers within 15s after trigger")["passed"]
    assert _verdict(summary, "sync recovers within 40s after trigger")["passed"]


def test_a_fault_that_never_applied_makes_recovery_undetermined() -> None:
    text = "sync recovers within 40s after trigger"
    summary = _run(_sync(lambda t: True), text, fault=_fault(applied=False))
    verdict = _verdict(summary, text)
    assert verdict["outcome"] == "undetermined" and "fault trigger was never applied" in verdict["reason"]
    assert summary["metastability"]["sync"]["outcome"] == "undetermined"


def test_a_removal_never_acknowledged_makes_recovery_undetermined() -> None:
    summary = _run(_sync(lambda t: True), fault=_fault(removed=False))
    assert summary["metastability"]["sync"]["outcome"] == "undetermined"
    assert "removal of fault trigger was never acknowledged" in summary["metastability"]["sync"]["reason"]


def _async(fulfilled_at: Callable[[float], float]) -> list[Row]:
    """Every async arrival gets its 202 in 0.2 s; its order is seen fulfilled at fulfilled_at(t)."""
    rows = []
    for i in range(120 * RATE):
        t = i / RATE
        rows.append(Row(t, t + 0.2, "async", "checkout", 202, 0, f"a{i}"))
        rows.append(Row(t, fulfilled_at(t), "async", "fulfillment", 200, 0, f"a{i}"))
    return rows


def test_async_202s_unaffected_while_fulfilment_stalls_is_not_recovered() -> None:
    # every order from the trigger on waits in a backlog until 100 s; the 202s never slow down
    rows = _async(lambda t: max(t + 3.0, 100.0) if t >= 30 else t + 3.0)
    summary = _run(rows, "async recovers within 40s after trigger")
    assert not _verdict(summary, "async recovers within 40s after trigger")["passed"]
    async_ = summary["metastability"]["async"]
    assert async_["outcome"] == "metastable"
    assert async_["evidence"]["fulfilment_deadline_s"] == 3.0
    ages = async_["evidence"]["oldest_unfulfilled_s"]
    assert ages[0] == 10.0 and ages[-1] == 50.0  # the order of 30 s still waits at 40 s and 80 s


def test_async_recovers_once_new_orders_are_fulfilled_in_time_again() -> None:
    # the backlog of the trigger drains by 70 s: orders arriving from 67 s on are on time
    rows = _async(lambda t: max(t + 3.0, 70.0) if t >= 30 else t + 3.0)
    summary = _run(rows, "async recovers within 20s after trigger", "async recovers within 40s after trigger")
    assert summary["metastability"]["async"]["recovery_s"] == 27.0
    assert not _verdict(summary, "async recovers within 20s after trigger")["passed"]
    assert _verdict(summary, "async recovers within 40s after trigger")["passed"]


def test_a_window_too_short_is_undetermined() -> None:
    summary = _run(_sync(lambda t: not 30 <= t < 43, until=60), load_end=60)
    sync = summary["metastability"]["sync"]
    assert sync["outcome"] == "undetermined" and "only 20 s after trigger could be judged" in sync["reason"]
    assert any("can not be told" in line for line in summary["reading"])


def test_an_arrival_whose_answer_could_not_come_before_the_records_end_is_not_a_failure() -> None:
    # arrivals from 75 s on have no answer yet: the run's records end before their timeout
    rows = [r for r in _sync(lambda t: not 30 <= t < 42) if r.intended < 75 or r.end < 76]
    rows += [Row(t / RATE, t / RATE + 9, "sync", "checkout", 0, 0, "") for t in range(75 * RATE, 78 * RATE)]
    sync = _run(rows)["metastability"]["sync"]
    assert sync["outcome"] == "undetermined"
    assert "not known yet" in sync["reason"] and sync["evidence"]["observation_s"] == 35


def test_a_clean_recovery_in_3_s_after_the_applied_removal_takes_3_s() -> None:
    # applied 0.4 s late, removed 0.6 s late: the sync lane is back from 3 s after the removal
    fault = _fault(start=30.4, end=40.6)
    summary = _run(
        _sync(lambda t: not 30.4 <= t < 43.6), "sync recovers within 5s after trigger", fault=fault
    )
    assert summary["metastability"]["sync"]["recovery_s"] == 3.0
    assert _verdict(summary, "sync recovers within 5s after trigger")["passed"]


def test_metastable_with_offered_load_unchanged_and_retries_risen() -> None:
    rows = _sync(lambda t: t < 30, retry=True)
    summary = _run(rows, "sync does not recover within 40s after trigger")
    assert _verdict(summary, "sync does not recover within 40s after trigger")["passed"]
    sync = summary["metastability"]["sync"]
    assert sync["outcome"] == "metastable"
    evidence = sync["evidence"]
    assert evidence["offered_before_rps"] == evidence["offered_after_rps"] == RATE
    assert (evidence["retries_before"], evidence["retries_after"]) == (0, 40 * RATE)
    assert any("metastable failure" in line for line in summary["reading"])


def test_a_lane_under_more_offered_load_after_the_trigger_is_not_called_metastable() -> None:
    rows = [r for r in _sync(lambda t: t < 30) if r.intended < 40] + [
        Row(40 + i / 8, 45 + i / 8, "sync", "checkout", 504, 0, "") for i in range(80 * 8)
    ]
    summary = _run(rows, "sync does not recover within 40s after trigger")
    sync = summary["metastability"]["sync"]
    assert sync["outcome"] == "not_recovered" and "offered load rose" in sync["reason"]
    assert not any(line.endswith("a metastable failure.") for line in summary["reading"])
    assert _verdict(summary, "sync does not recover within 40s after trigger")["passed"]


def test_a_dozen_arrivals_before_the_trigger_are_too_few_to_compare() -> None:
    rows = [r for r in _sync(lambda t: True) if r.intended >= 27]  # 12 arrivals before 30 s, all fine
    sync = _run(rows)["metastability"]["sync"]
    assert sync["outcome"] == "undetermined" and "too uncertain to compare: 12/12" in sync["reason"]
