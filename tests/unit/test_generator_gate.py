"""A verdict over a window where the load generator was behind is undetermined, naming it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from harness.analysis.generator import (
    CPU_SHARE_LIMIT,
    GeneratorWindow,
    ProcessHealth,
    behind_reasons,
    gated,
    send_lag_limit,
)
from harness.analysis.inputs import Row, RunInputs
from harness.analysis.summary import analyse
from harness.records.generator import GeneratorSample
from harness.records.verdicts import Verdict
from tests.unit.scenarios import made_up_scenario

FAILED = Verdict(expectation="sync.checkout.p99 < 50ms at steady", outcome="fail", observed="p99 15.68 s")
PASSED = Verdict(expectation="sync.checkout.p99 < 50ms at steady", outcome="pass", observed="p99 4 ms")


def _lags(lag_s: float, n: int = 1000, start: float = 0.0) -> list[tuple[float, float]]:
    return [(start + i * 0.01, lag_s) for i in range(n)]


def _healthy(worker: str = "worker 1") -> ProcessHealth:
    return ProcessHealth(worker=worker, loop_lag_max_s=0.004, cpu_share_max=0.35, never_sent=0)


def test_a_generator_that_kept_up_leaves_the_verdict_as_it_was_with_its_figures() -> None:
    window = GeneratorWindow.of(_lags(0.002), 0.0, 10.0, [_healthy()])
    verdict = gated(FAILED, window, 0.05)
    assert verdict.outcome == "fail"
    assert verdict.evidence["generator"]["send_lag_p99_ms"] == 2.0
    assert verdict.evidence["generator"]["arrivals"] == 1000


def test_send_lag_past_a_tenth_of_the_bound_makes_a_fail_undetermined_naming_the_generator() -> None:
    window = GeneratorWindow.of(_lags(0.88), 0.0, 10.0, [_healthy()])
    verdict = gated(FAILED, window, 0.05)
    assert verdict.outcome == "undetermined"
    assert verdict.reason is not None
    assert "load generator fell behind in 0.0-10.0 s" in verdict.reason
    assert "send lag p99 was 880 ms (limit 25 ms)" in verdict.reason
    assert "--workers N" in verdict.reason
    assert verdict.observed == FAILED.observed  # what was measured stays shown


def test_a_pass_is_not_kept_either_when_the_generator_was_behind() -> None:
    window = GeneratorWindow.of(_lags(0.002), 0.0, 10.0, [ProcessHealth(
        worker="worker 2", loop_lag_max_s=0.01, cpu_share_max=0.5, never_sent=7)])  # fmt: skip
    verdict = gated(PASSED, window, 0.05)
    assert verdict.outcome == "undetermined"
    assert verdict.reason is not None and "worker 2 never sent 7 arrivals that were due" in verdict.reason


@pytest.mark.parametrize(
    ("health", "words"),
    [
        (
            ProcessHealth(worker="w", loop_lag_max_s=0.25, cpu_share_max=0.4, never_sent=0),
            "event loop ran 250 ms late",
        ),
        (
            ProcessHealth(worker="w", loop_lag_max_s=0.01, cpu_share_max=CPU_SHARE_LIMIT, never_sent=0),
            "used 90% of its CPU",
        ),
    ],
)
def test_a_blocked_loop_or_a_saturated_core_is_behind(health: ProcessHealth, words: str) -> None:
    reasons = behind_reasons(GeneratorWindow.of(_lags(0.001), 0.0, 10.0, [health]), 0.05)
    assert len(reasons) == 1 and words in reasons[0]


def test_the_send_lag_limit_scales_with_the_bound_above_its_floor() -> None:
    assert send_lag_limit(0.05) == pytest.approx(0.025)  # the floor
    assert send_lag_limit(5.0) == pytest.approx(0.5)  # a tenth of the bound
    assert send_lag_limit(None) == pytest.approx(0.25)  # no latency bound
    window = GeneratorWindow.of(_lags(0.3), 0.0, 10.0)
    assert behind_reasons(window, 5.0) == []  # 300 ms late is a small share of a 5 s bound
    assert behind_reasons(window, None) != []  # but moves arrivals across one-second bins


def test_only_the_window_s_arrivals_count() -> None:
    lags = _lags(0.001, n=500) + _lags(2.0, n=500, start=20.0)
    assert GeneratorWindow.of(lags, 0.0, 10.0).send_lag_p99_s == pytest.approx(0.001)
    empty = GeneratorWindow.of(lags, 12.0, 15.0)
    assert empty.arrivals == 0 and empty.send_lag_p99_s is None
    assert behind_reasons(empty, 0.05) == []


# -- The gate in the verdicts: made-up runs judged as a run is -----------------------------
def _rows(lag_s: float, *, start: float = 0.0, end: float = 80.0, rate: float = 50.0) -> list[Row]:
    """Sync checkouts answered 5 ms after they were sent, sent ``lag_s`` after intended."""
    n = int((end - start) * rate)
    times = [start + i / rate for i in range(n)]
    return [
        Row(t, t + lag_s + 0.005, "sync", "checkout", 200, 0, f"s{i}", t + lag_s) for i, t in enumerate(times)
    ]


def _sample(worker: str, t: float, *, cpu: float = 0.3, loop: float = 0.002, backlog: int = 0,
            never: int = 0, stopped: bool = False) -> GeneratorSample:  # fmt: skip
    due = int(t * 50)
    return GeneratorSample(worker=worker, t=t, window_s=1.0, sends=50, send_lag_p99_s=0.001, send_lag_max_s=0.002,
                           loop_lag_max_s=loop, cpu_share=cpu, due=due, sent=due - backlog, dropped=0,
                           never_sent=never, stopped=stopped)  # fmt: skip


EXPECTATIONS = ["sync.checkout.p99 < 50ms at baseline", "sync.checkout.p99 < 50ms at rest"]


def _judged(rows: list[Row], samples: Sequence[GeneratorSample] = ()) -> dict[str, Any]:
    inputs = RunInputs(scenario=made_up_scenario(rate=50, expectations=EXPECTATIONS), rows=tuple(rows),
                       faults=(), load_end=80.0, generator=tuple(samples))  # fmt: skip
    summary = analyse(inputs).to_json()
    return {"summary": summary, **{v["expectation"]: v for v in summary["verdicts"]}}


def test_a_run_whose_generator_kept_up_is_decided_with_its_figures_as_evidence() -> None:
    judged = _judged(_rows(0.001), [_sample("0", float(t)) for t in range(1, 81)])
    for text in EXPECTATIONS:
        assert judged[text]["outcome"] == "pass", judged[text]
        assert judged[text]["evidence"]["generator"]["processes"][0]["worker"] == "generator 0"
    generator = judged["summary"]["generator"]
    assert [w["name"] for w in generator["windows"]] == ["run", "baseline", "rest"]
    assert all(w["behind"] == [] for w in generator["windows"])
    assert generator["workers"]["0"]["due"] == 80 * 50


def test_a_late_generator_makes_the_verdict_undetermined_where_it_was_late_only() -> None:
    rows = _rows(0.001, end=20.0) + _rows(0.9, start=20.0)  # late from the rest stage on
    judged = _judged(rows)
    assert judged[EXPECTATIONS[0]]["outcome"] == "pass"
    late = judged[EXPECTATIONS[1]]
    assert late["outcome"] == "undetermined"
    assert "load generator fell behind in 20.0-80.0 s" in late["reason"]
    assert "send lag p99 was 900 ms (limit 25 ms)" in late["reason"]
    rest = next(w for w in judged["summary"]["generator"]["windows"] if w["name"] == "rest")
    assert rest["send_lag_p99_ms"] == 900.0 and rest["behind"]
    assert judged["summary"]["reading"][0].startswith("The load generator fell behind its schedule")


def test_arrivals_never_sent_count_for_the_windows_from_where_its_backlog_grew() -> None:
    samples = [_sample("1", float(t)) for t in range(1, 40)]
    samples += [_sample("1", float(t), backlog=(t - 39) * 10) for t in range(40, 80)]
    samples.append(_sample("1", 80.0, backlog=410, never=410, stopped=True))
    judged = _judged(_rows(0.001), samples)
    assert judged[EXPECTATIONS[0]]["outcome"] == "pass"  # 0-20 s: it was keeping up then
    assert judged[EXPECTATIONS[1]]["outcome"] == "undetermined"
    assert "generator 1 never sent 410 arrivals that were due" in judged[EXPECTATIONS[1]]["reason"]


def test_a_saturated_core_counts_on_average_and_one_stall_does_not() -> None:
    stall = [_sample("0", float(t), loop=2.5 if t == 3 else 0.002) for t in range(1, 81)]
    assert _judged(_rows(0.001), stall)[EXPECTATIONS[0]]["outcome"] == "pass"
    busy = [_sample("0", float(t), cpu=0.95 if t > 20 else 0.3) for t in range(1, 81)]
    judged = _judged(_rows(0.001), busy)
    assert judged[EXPECTATIONS[0]]["outcome"] == "pass"
    assert "generator 0 used 95% of its CPU core on average" in judged[EXPECTATIONS[1]]["reason"]


def test_an_undetermined_verdict_keeps_its_own_reason_and_names_the_generator_too() -> None:
    rows = _rows(0.03, end=2.0, rate=5)  # ten 35 ms checkouts: too few to bound a p99, and late
    judged = _judged(rows)
    reason = judged[EXPECTATIONS[0]]["reason"]
    assert judged[EXPECTATIONS[0]]["outcome"] == "undetermined"
    assert "load generator fell behind" in reason and not reason.startswith("the load generator")


def test_the_send_lag_judged_is_at_the_verdict_s_quantile() -> None:
    lags = [(i * 0.1, 0.003) for i in range(47)] + [(4.75, 0.027)]  # one late wake-up in 48
    window = GeneratorWindow.of(lags, 0.0, 10.0, quantile=0.5)
    assert behind_reasons(window, 0.1) == []  # a p50 is not moved by one late arrival
    late = GeneratorWindow.of(lags, 0.0, 10.0, quantile=1.0)
    assert behind_reasons(late, 0.1) == ["its send lag max was 27 ms (limit 25 ms)"]
