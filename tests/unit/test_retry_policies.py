"""The sync lane's retry policies, each with an injected clock (and generator where random),
held to the numbers it promises; and a downstream that drops work whose deadline passed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from harness.config.settings import load_settings
from model import metric_names as names
from model.errors import ConfigError
from model.headers import DEADLINE_HEADER
from model.settings import (
    RETRY_POLICIES,
    AdaptiveThrottleSettings,
    BreakerSettings,
    DependencySettings,
    RetryBudgetSettings,
    SyncLaneSettings,
    SyncRetrySettings,
    TokenBucketSettings,
)
from targets.downstream import SERVICE_KEY, DownstreamService, build_downstream_app
from targets.random_streams import RandomStreams
from targets.resilience import (
    AdaptiveThrottle,
    CircuitBreaker,
    DependencyRetryPolicy,
    RetryBudget,
    RetryTokenBucket,
    attempt_timeout_s,
    deadline_header_value,
    parse_deadline_ms,
    throttle_probability,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FixedDraws(random.Random):
    """A generator whose ``random()`` returns ``draw``: decides exactly which side of p a roll falls."""

    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = draw

    def random(self) -> float:
        return self.draw


# -- settings -----------------------------------------------------------------------------------


def test_the_seed_policy_and_the_issues_numbers_are_the_defaults() -> None:
    retry = SyncLaneSettings().retry
    assert retry.policy == "seed"
    assert (retry.attempts, retry.backoff_ms, retry.jitter) == (3, (100.0, 200.0, 400.0), "none")
    assert (retry.attempts_allowed, retry.jitter_applied) == (3, "none")
    assert (retry.budget.ratio, retry.budget.min_retries_per_s, retry.budget.window_s) == (0.1, 0.5, 10.0)
    bucket = retry.token_bucket
    assert (bucket.capacity, bucket.retry_cost, bucket.timeout_cost, bucket.success_refund) == (500, 5, 10, 1)
    assert (retry.adaptive.k, retry.adaptive.window_s) == (2.0, 120.0)
    assert RETRY_POLICIES == (
        "seed", "none", "full_jitter", "budget", "token_bucket", "adaptive", "breaker", "deadline",
    )  # fmt: skip


def test_none_full_jitter_and_breaker_change_only_their_own_setting() -> None:
    assert SyncRetrySettings(policy="none").attempts_allowed == 1
    assert SyncRetrySettings(policy="full_jitter").jitter_applied == "full"
    assert SyncRetrySettings(policy="full_jitter").attempts_allowed == 3
    breaker = SyncLaneSettings(retry=SyncRetrySettings(policy="breaker"), breaker=BreakerSettings(open_s=7))
    assert breaker.breaker_applied == BreakerSettings(enabled=True, open_s=7)
    assert not SyncLaneSettings().breaker_applied.enabled
    # retry-storm-fixed's way still works: the seed's policy with jitter and a breaker set by hand
    fixed = SyncLaneSettings(retry=SyncRetrySettings(jitter="full"), breaker=BreakerSettings(enabled=True))
    assert fixed.retry.jitter_applied == "full" and fixed.breaker_applied.enabled


def test_an_unknown_policy_is_refused_naming_the_field_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text("sync:\n  retry: {policy: exponential}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, broker=None, base_port=None, toxiproxy_port=None, time_scale=None)
    message = str(caught.value)
    assert str(config) in message and "sync.retry.policy" in message and "'token_bucket'" in message


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (RetryBudgetSettings, "ratio", 0),
        (RetryBudgetSettings, "ratio", 1.5),
        (RetryBudgetSettings, "min_retries_per_s", -1),
        (RetryBudgetSettings, "window_s", 0),
        (TokenBucketSettings, "capacity", 0),
        (TokenBucketSettings, "retry_cost", -5),
        (TokenBucketSettings, "timeout_cost", -1),
        (TokenBucketSettings, "success_refund", -1),
        (AdaptiveThrottleSettings, "k", 0.5),
        (AdaptiveThrottleSettings, "window_s", 0),
    ],
)
def test_sub_settings_out_of_bounds_are_refused_by_name(model: type, field: str, value: float) -> None:
    with pytest.raises(ValidationError) as caught:
        model(**{field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


# -- budget -------------------------------------------------------------------------------------


def test_the_budget_lets_through_at_most_ratio_of_calls_plus_the_reserve_over_a_window() -> None:
    clock = FakeClock()
    budget = RetryBudget(RetryBudgetSettings(ratio=0.1, min_retries_per_s=0.5, window_s=10), clock=clock)
    assert budget.reserve == 5
    retries = 0
    for i in range(1000):  # 1000 calls in one 10 s window, every one of them failing
        clock.now = i * 0.01
        budget.deposit()
        retries += budget.try_withdraw()
    # every call asked: exactly 10% of the 1000 calls plus the reserve of 5, and no more
    assert retries == 0.1 * 1000 + 5
    assert not budget.try_withdraw()


def test_the_budget_forgets_after_its_window_and_the_window_follows_the_time_scale() -> None:
    clock = FakeClock()
    budget = RetryBudget(
        RetryBudgetSettings(ratio=0.5, min_retries_per_s=0, window_s=10), time_scale=0.5, clock=clock
    )
    for _ in range(4):
        budget.deposit()
    assert [budget.try_withdraw() for _ in range(3)] == [True, True, False]
    clock.now = 4.9  # the 10 s window is 5 s at time scale 0.5
    assert not budget.try_withdraw()
    clock.now = 5.1
    assert budget.balance() == 0
    budget.deposit()
    budget.deposit()
    assert budget.try_withdraw()


def test_a_quiet_client_can_still_retry_on_the_reserve() -> None:
    clock = FakeClock()
    budget = RetryBudget(RetryBudgetSettings(ratio=0.1, min_retries_per_s=0.5, window_s=10), clock=clock)
    budget.deposit()  # one call: 10% of it is no whole retry
    assert sum(budget.try_withdraw() for _ in range(10)) == 5


# -- token bucket -------------------------------------------------------------------------------


def test_the_token_bucket_denies_retries_after_100_or_after_50_timeouts() -> None:
    bucket = RetryTokenBucket(TokenBucketSettings())
    granted = 0
    while bucket.acquire("http_5xx") is not None:
        granted += 1
    assert granted == 100 and bucket.available == 0
    timeouts = RetryTokenBucket(TokenBucketSettings())
    costs = []
    while (cost := timeouts.acquire("timeout")) is not None:
        costs.append(cost)
    assert costs == [10] * 50


def test_a_success_refunds_one_or_its_last_retrys_cost_never_above_capacity() -> None:
    bucket = RetryTokenBucket(TokenBucketSettings(capacity=500))
    bucket.succeeded(None)
    assert bucket.available == 500  # full stays full
    for _ in range(100):
        bucket.acquire("http_5xx")
    bucket.succeeded(None)  # a success without a retry puts back 1
    assert bucket.available == 1
    assert bucket.acquire("connect_error") is None  # 1 token: no retry costing 5
    for _ in range(9):
        bucket.succeeded(None)
    cost = bucket.acquire("timeout")
    assert cost == 10 and bucket.available == 0
    bucket.succeeded(cost)  # the retry succeeded: its 10 come back
    assert bucket.available == 10


def test_the_token_bucket_policy_denies_the_101st_retry_and_a_success_refunds_it() -> None:
    policy = DependencyRetryPolicy(
        SyncRetrySettings(policy="token_bucket"), CircuitBreaker(BreakerSettings()), rng=random.Random(1)
    )
    calls = [policy.start() for _ in range(101)]
    denials = [policy.retry_denial(call, "http_5xx") for call in calls]
    assert denials[:100] == [None] * 100 and denials[100] == "token_bucket"
    policy.record(calls[0], "ok")  # call 0 succeeded on its retry, which cost 5
    assert policy.retry_denial(calls[100], "http_5xx") is None


# -- adaptive throttling ------------------------------------------------------------------------


def test_the_rejection_probability_is_the_books_formula() -> None:
    assert throttle_probability(0, 0, 2.0) == 0.0
    assert throttle_probability(100, 50, 2.0) == 0.0  # half accepted: k = 2 lets all through
    assert throttle_probability(100, 20, 2.0) == pytest.approx(60 / 101)
    assert throttle_probability(100, 0, 2.0) == pytest.approx(100 / 101)
    assert throttle_probability(100, 20, 1.0) == pytest.approx(80 / 101)


def test_the_throttle_counts_its_window_rejects_by_the_formula_and_forgets() -> None:
    clock = FakeClock()
    draws = FixedDraws(0.999)  # above any p below 0.999: nothing rejected while counting
    throttle = AdaptiveThrottle(
        AdaptiveThrottleSettings(k=2, window_s=120), time_scale=0.5, clock=clock, rng=draws
    )
    for i in range(100):
        clock.now = i * 0.1
        assert throttle.admit()
        if i % 5 == 0:
            throttle.accepted()
    assert throttle.probability() == pytest.approx((100 - 2 * 20) / 101)
    draws.draw = 60 / 101 - 0.001  # a roll just under p: rejected, and counted as a request
    assert not throttle.admit()
    assert throttle.probability() == pytest.approx((101 - 2 * 20) / 102)
    draws.draw = 61 / 102 + 0.001
    assert throttle.admit()
    clock.now = 9.9 + 60.0  # the last request leaves the 60 s window (120 s at time scale 0.5)
    assert throttle.probability() == 0.0


def test_the_throttled_share_of_a_dead_backend_follows_the_formula() -> None:
    throttle = AdaptiveThrottle(AdaptiveThrottleSettings(), clock=FakeClock(), rng=random.Random(5))
    sent = sum(throttle.admit() for _ in range(2000))  # nothing is ever accepted
    # p = n / (n + 1) after n requests: the expected number sent is sum 1/(n+1) = ln 2000 + 0.58
    assert 3 <= sent <= 20, sent


def test_the_adaptive_policy_refuses_an_attempt_as_throttled() -> None:
    policy = DependencyRetryPolicy(
        SyncRetrySettings(policy="adaptive"), CircuitBreaker(BreakerSettings()), clock=FakeClock()
    )
    outcomes = []
    for _ in range(200):
        refusal = policy.refusal()
        outcomes.append(refusal or "sent")
        if refusal is None:
            policy.record(policy.start(), "timeout")  # a backend that never answers in time
    assert outcomes[0] == "sent" and outcomes.count("throttled") > 150


# -- deadlines ----------------------------------------------------------------------------------


def test_deadline_header_values_are_checked_and_the_remaining_time_is_capped() -> None:
    assert parse_deadline_ms("2500") == 2500.0
    assert parse_deadline_ms("0") == 0.0
    for bad in ("-1", "soon", "nan", "inf", "1e12", ""):
        with pytest.raises(ValueError, match=DEADLINE_HEADER):
            parse_deadline_ms(bad)
    assert attempt_timeout_s(5.0, None, now=100.0) == 5.0  # no order deadline: the attempt's own
    assert attempt_timeout_s(5.0, 110.0, now=100.0) == 5.0  # 10 s left: the timeout is shorter
    assert attempt_timeout_s(5.0, 102.5, now=100.0) == 2.5  # 2.5 s left caps it
    assert attempt_timeout_s(5.0, 99.0, now=100.0) <= 0  # passed: no attempt
    assert deadline_header_value(2.5) == "2500"
    assert deadline_header_value(0.0019) == "1"  # rounded down, never past the caller
    assert deadline_header_value(-3) == "0"


def test_only_the_deadline_policy_propagates_deadlines() -> None:
    for name in RETRY_POLICIES:
        policy = DependencyRetryPolicy(SyncRetrySettings(policy=name), CircuitBreaker(BreakerSettings()))  # type: ignore[arg-type]
        assert policy.propagates_deadline == (name == "deadline")


# -- a downstream drops work whose caller gave up -----------------------------------------------


@pytest.fixture
async def email() -> AsyncIterator[tuple[TestServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    app = build_downstream_app(
        lane="sync", dependency="email", settings=DependencySettings(latency_ms=300, spread=0, concurrency=1),
        time_scale=1.0, registry=registry,
        streams=RandomStreams("downstream-sync-email", seed=2),
    )  # fmt: skip
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, registry
    await server.close()


def _dropped(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(
        names.DOWNSTREAM_DEADLINE_DROPPED, {"lane": "sync", "dependency": "email"}
    )


async def _work(
    session: aiohttp.ClientSession, server: TestServer, order_id: str, deadline_ms: str | None = None
) -> tuple[int, dict[str, object], float]:
    headers = {DEADLINE_HEADER: deadline_ms} if deadline_ms is not None else {}
    started = time.monotonic()
    async with session.post(server.make_url("/work"), json={"order_id": order_id}, headers=headers) as r:
        return r.status, await r.json(), time.monotonic() - started


async def test_a_request_whose_deadline_passed_while_it_waited_for_a_slot_is_dropped_undone(
    email: tuple[TestServer, CollectorRegistry],
) -> None:
    server, registry = email
    service: DownstreamService = server.app[SERVICE_KEY]
    assert _dropped(registry) == 0
    async with aiohttp.ClientSession() as session:
        first = asyncio.create_task(_work(session, server, "holds-the-slot"))
        await asyncio.sleep(0.05)
        late = await _work(session, server, "gave-up", deadline_ms="100")  # the slot frees at 300 ms
        done = await first
    assert done[0] == 200
    assert late[0] == 504 and late[1] == {"error": "deadline_exceeded", "dependency": "email"}
    # answered when it got the slot (about 250 ms after it came), not after 300 ms more work
    assert late[2] < 0.45, late[2]
    assert service.ledger.applied_many(["holds-the-slot", "gave-up"]) == {"holds-the-slot": 1, "gave-up": 0}
    assert _dropped(registry) == 1


async def test_work_stops_at_the_deadline_and_an_expired_request_is_answered_at_once(
    email: tuple[TestServer, CollectorRegistry],
) -> None:
    server, registry = email
    service: DownstreamService = server.app[SERVICE_KEY]
    async with aiohttp.ClientSession() as session:
        cut = await _work(session, server, "cut", deadline_ms="120")  # 300 ms of work
        expired = await _work(session, server, "expired", deadline_ms="0")
        in_time = await _work(session, server, "in-time", deadline_ms="2000")
        bad = await _work(session, server, "bad", deadline_ms="soon")
    assert cut[0] == 504 and 0.1 <= cut[2] < 0.25, cut
    assert expired[0] == 504 and expired[2] < 0.1, expired
    assert in_time[0] == 200
    assert bad[0] == 400 and bad[1]["error"] == "invalid_deadline"
    assert service.ledger.applied_many(["cut", "expired", "in-time", "bad"]) == {
        "cut": 0, "expired": 0, "in-time": 1, "bad": 0,
    }  # fmt: skip
    assert _dropped(registry) == 2


def test_a_throttled_attempt_does_not_use_up_a_half_open_breakers_one_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerSettings(enabled=True, failure_threshold=1, open_s=1), clock=clock)
    policy = DependencyRetryPolicy(
        SyncRetrySettings(policy="adaptive"), breaker, clock=clock, rng=random.Random(1)
    )
    assert policy.refusal() is None
    policy.record(policy.start(), "timeout")  # the breaker opens
    clock.now = 2.0  # its next allow() half-opens it and lets one trial out
    outcomes: list[str] = []
    while (refusal := policy.refusal()) is not None and len(outcomes) < 100:
        outcomes.append(refusal)
    # throttled (p = n / (n + 1) with no accepts) until the throttle admits one: that one is the trial
    assert refusal is None and outcomes and set(outcomes) == {"throttled"}, outcomes


def test_full_jitter_draws_each_back_off_below_the_seeds_step_and_the_seed_waits_it_exactly() -> None:
    def policy(name: str) -> DependencyRetryPolicy:
        settings = SyncRetrySettings(policy=name)  # type: ignore[arg-type]
        return DependencyRetryPolicy(
            settings, CircuitBreaker(BreakerSettings()), time_scale=0.5, rng=random.Random(8)
        )

    assert [policy("seed").backoff_s(i) for i in (1, 2)] == [0.05, 0.1]  # 100 and 200 ms at time scale 0.5
    jittered = policy("full_jitter")
    delays = [jittered.backoff_s(2) for _ in range(500)]
    assert all(0 <= d <= 0.1 for d in delays) and len(set(delays)) == 500
    assert 0.04 <= sum(delays) / len(delays) <= 0.06  # uniform on [0, 0.1]: mean 0.05, sd of the mean 0.0013
