"""A verdict over a window where the load generator was behind is undetermined, naming it."""

from __future__ import annotations

import pytest

from harness.analysis.generator import (
    CPU_SHARE_LIMIT,
    GeneratorWindow,
    ProcessHealth,
    behind_reasons,
    gated,
    send_lag_limit,
)
from harness.analysis.verdicts import Verdict

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
