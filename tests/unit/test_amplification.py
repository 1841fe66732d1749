"""What each retry policy allows at one hop, and the amplification measured over a window."""

from __future__ import annotations

import pytest

from harness.analysis.amplification import (
    POLICIES,
    async_bound,
    attempts_between,
    policy_bound,
    window_amplification,
)


@pytest.mark.parametrize("policy", ["seed", "full_jitter", "deadline", "breaker"])
def test_the_attempts_per_call_times_the_shoppers_own_attempts(policy: str) -> None:
    assert policy_bound(policy, attempts=3, impatient_retries=1).value == 6.0
    assert policy_bound(policy, attempts=3, impatient_retries=0).value == 3.0
    assert policy_bound(policy, attempts=5, impatient_retries=2).value == 15.0


def test_the_breakers_bound_holds_until_it_opens_and_says_so() -> None:
    assert "until the breaker opens" in policy_bound("breaker", attempts=3, impatient_retries=1).basis


def test_no_retries_leaves_only_the_shoppers_own() -> None:
    assert policy_bound("none", attempts=3, impatient_retries=1).value == 2.0
    assert policy_bound("none", attempts=3, impatient_retries=0).value == 1.0


def test_a_retry_budget_adds_its_ratio_and_its_floor_spread_over_the_arrivals() -> None:
    assert policy_bound("budget", attempts=3, impatient_retries=1).value == pytest.approx(2.2)

    def floored(time_scale: float) -> float | None:
        return policy_bound(
            "budget", attempts=3, impatient_retries=1, budget_min_retries_per_s=1.0,
            window_s=10.0, window_arrivals=100, time_scale=time_scale,
        ).value  # fmt: skip

    assert floored(1.0) == pytest.approx(2.3)  # 1 retry/s over 10 s is 0.1 per arrival
    assert floored(0.5) == pytest.approx(2.4)  # in half its time: twice the floor per second
    no_arrivals = policy_bound("budget", attempts=3, impatient_retries=1, budget_min_retries_per_s=1.0)
    assert no_arrivals.value is None and "floor" in no_arrivals.basis


def test_a_token_bucket_allows_its_first_tokens_then_the_refunds() -> None:
    # 500 tokens / 5 per retry = 100 retries over 200 arrivals, then 1 refund per 5-token retry
    bound = policy_bound("token_bucket", attempts=3, impatient_retries=1, window_s=10, window_arrivals=200)
    assert bound.value == pytest.approx(2 * 1.2 + 0.5)
    # over few arrivals the first tokens are worth more retries than calls can make
    few = policy_bound("token_bucket", attempts=3, impatient_retries=1, window_s=10, window_arrivals=10)
    assert few.value == 6.0 and "capped" in few.basis
    assert policy_bound("token_bucket", attempts=3, impatient_retries=1).value is None


def test_adaptive_throttling_sends_k_times_the_accepts_and_remembers_its_window() -> None:
    # the throttle's 120 s memory is no longer than the window: K x (1 + r)
    long = policy_bound("adaptive", attempts=3, impatient_retries=1, window_s=120, window_arrivals=600)
    assert long.value == 4.0
    # a 60 s window: the 60 s of accepts before it let (K - 1) x 60 / 60 more per arrival
    short = policy_bound("adaptive", attempts=5, impatient_retries=1, window_s=60, window_arrivals=300)
    assert short.value == 6.0
    # time-scaled to a quarter, its memory is 30 s
    scaled = policy_bound(
        "adaptive", attempts=5, impatient_retries=1, window_s=30, window_arrivals=600, time_scale=0.25
    )
    assert scaled.value == 4.0
    assert (
        policy_bound("adaptive", attempts=3, impatient_retries=1, window_s=10, window_arrivals=50).value
        == 6.0
    )


def test_every_policy_has_a_bound_no_larger_than_what_calls_may_make() -> None:
    for policy in POLICIES:
        bound = policy_bound(policy, attempts=3, impatient_retries=1, window_s=30, window_arrivals=180)
        assert bound.value is not None and 1.0 <= bound.value <= 6.0, (policy, bound)


def test_an_unknown_policy_has_no_bound() -> None:
    bound = policy_bound("hope", attempts=3, impatient_retries=1)
    assert bound.value is None and "hope" in bound.basis


def test_the_async_lanes_bound_is_its_critical_retries_or_its_workers_attempts() -> None:
    critical = async_bound(critical=True, critical_attempts=3, worker_attempts=12, impatient_retries=1)
    assert critical.value == 6.0
    worker = async_bound(critical=False, critical_attempts=3, worker_attempts=12, impatient_retries=1)
    assert worker.value == 24.0 and "redeliveries" in worker.basis


def test_attempts_between_readings_are_interpolated_and_unknown_outside_them() -> None:
    times, counts = [10.0, 12.0, 14.0, 16.0], [0.0, 4.0, 24.0, None]
    assert attempts_between(times, counts, 10.0, 14.0) == 24.0
    assert attempts_between(times, counts, 11.0, 13.0) == pytest.approx(12.0)
    assert attempts_between(times, counts, 9.0, 12.0) is None  # before the first reading
    assert attempts_between(times, counts, 12.0, 15.0) is None  # a count not known
    assert attempts_between([], [], 0.0, 1.0) is None


def test_a_window_with_no_arrivals_has_no_amplification_not_zero() -> None:
    value, why = window_amplification([1.0, 2.0], [0.0, 10.0], [0.0, 0.0], 5.0, 8.0)
    assert value is None and why == "no arrivals were offered in 5.0-8.0 s"
    value, why = window_amplification([5.5, 6.5], [0.0, 10.0], [0.0, 0.0], 5.0, 8.0)
    assert value == 0.0 and why is None  # arrivals that made no attempt there: a true 0
    value, why = window_amplification([5.5, 6.5], [0.0, 6.0], [0.0, 12.0], 5.0, 8.0)
    assert value is None and "not known" in (why or "")
