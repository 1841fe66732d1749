from __future__ import annotations

import random

from model.settings import BreakerSettings, RetrySettings
from targets.resilience import BreakerState, CircuitBreaker, backoff_delay, retryable


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_then_half_opens_with_one_trial() -> None:
    clock = FakeClock()
    seen: list[BreakerState] = []
    breaker = CircuitBreaker(
        BreakerSettings(enabled=True, failure_threshold=3, open_s=10),
        clock=clock,
        on_change=seen.append,
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state is BreakerState.CLOSED
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN  # type: ignore[comparison-overlap]  # mypy narrowed the property
    assert not breaker.allow()
    clock.now = 10.5
    assert breaker.allow()  # the one trial
    assert not breaker.allow()  # no second trial while the first is out
    breaker.record(True)
    assert breaker.state is BreakerState.CLOSED
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_trial_reopens() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerSettings(enabled=True, failure_threshold=1, open_s=1), clock=clock)
    breaker.record(False)
    clock.now = 2
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_open_time_follows_the_time_scale() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        BreakerSettings(enabled=True, failure_threshold=1, open_s=10), time_scale=0.1, clock=clock
    )
    breaker.record(False)
    clock.now = 0.9
    assert not breaker.allow()
    clock.now = 1.1
    assert breaker.allow()


def test_disabled_breaker_always_allows() -> None:
    breaker = CircuitBreaker(BreakerSettings(enabled=False, failure_threshold=1))
    for _ in range(10):
        breaker.record(False)
    assert breaker.allow()


def test_backoff_is_the_seeds_schedule_and_full_jitter_stays_below_it() -> None:
    rng = random.Random(7)
    plain = RetrySettings()
    assert [backoff_delay(plain, i, 1.0, rng) for i in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.4]
    jittered = RetrySettings(jitter="full")
    delays = [backoff_delay(jittered, 2, 1.0, rng) for _ in range(200)]
    assert all(0 <= d <= 0.2 for d in delays)
    assert len(set(delays)) > 100


def test_no_retry_on_4xx() -> None:
    assert retryable("timeout") and retryable("http_5xx") and retryable("connect_error")
    assert not retryable("http_4xx")
    assert not retryable("circuit_open")
