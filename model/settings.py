"""Settings of the system under test: the seed's numbers, every one overridable.

These models are parsed from user files (scenarios, ``--config``), so they are pydantic
models that refuse unknown fields and name the field that is wrong.  They are frozen: a
process receives them once, at start, in the stack file the harness writes.

``time_scale`` multiplies every latency, timeout and back-off the targets apply themselves
(never a Toxiproxy toxic: those are the user's own numbers).  Tests shrink it to stay fast;
the demo, the benchmarks and the shipped scenarios run at 1.0, the seed's real numbers.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.system import SystemSpec

__all__ = [
    "BROKERS",
    "RETRY_POLICIES",
    "SEED_CHAIN",
    "AdaptiveThrottleSettings",
    "AsyncLaneSettings",
    "BreakerSettings",
    "Broker",
    "DependencySettings",
    "PortSettings",
    "RetryBudgetSettings",
    "RetryPolicy",
    "RetrySettings",
    "StackSettings",
    "SyncLaneSettings",
    "SyncRetrySettings",
    "TokenBucketSettings",
    "WorkerRetrySettings",
]


# The async lane's brokers, as the seeds name them: RabbitMQ (routing), Redis Streams and
# Pub/Sub (real-time; Pub/Sub keeps nothing), Kafka (ordered, replayable) and SQS (simple).
Broker = Literal["rabbitmq", "redis-streams", "redis-pubsub", "kafka", "sqs"]
BROKERS: tuple[str, ...] = get_args(Broker)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DependencySettings(_Frozen):
    """One downstream service: its latency and its finite capacity."""

    latency_ms: float = Field(ge=0)
    # Log-normal spread around the median latency: a real service has a tail, not a constant.
    spread: float = Field(default=0.25, ge=0, le=2)
    concurrency: int = Field(default=64, ge=1)
    queue: int = Field(default=128, ge=0)


# The seed's checkout: "Validate the payment with Stripe (400ms), deduct inventory (200ms),
# send a confirmation email (800ms), notify the warehouse (300ms), log to analytics (150ms)".
# The sync lane calls them in this order; the async lane keeps payment on the critical path.
SEED_CHAIN: dict[str, DependencySettings] = {
    "payment": DependencySettings(latency_ms=400),
    "inventory": DependencySettings(latency_ms=200),
    "warehouse": DependencySettings(latency_ms=300),
    "email": DependencySettings(latency_ms=800),
    "analytics": DependencySettings(latency_ms=150),
}


class RetrySettings(_Frozen):
    """The seed's ``callDownstreamService``: 3 attempts, back-off 100/200/400 ms, no retry on 4xx.

    ``backoff_ms[i]`` is the wait after failed attempt ``i + 1``; with 3 attempts the seed's code
    waits 100 ms and 200 ms (its 400 ms step is reached with a fourth attempt).  The last value
    repeats when there are more attempts than steps.
    """

    attempts: int = Field(default=3, ge=1, le=20)
    backoff_ms: tuple[float, ...] = (100.0, 200.0, 400.0)
    jitter: Literal["none", "full"] = "none"

    @model_validator(mode="after")
    def _backoff_not_empty(self) -> RetrySettings:
        if not self.backoff_ms or any(b < 0 for b in self.backoff_ms):
            raise ValueError("backoff_ms needs at least one value, none negative")
        return self

    def backoff_s(self, failed_attempt: int) -> float:
        """Seconds to wait after failed attempt number ``failed_attempt`` (1-based), unjittered."""
        steps = self.backoff_ms
        return steps[min(failed_attempt, len(steps)) - 1] / 1000.0


# The sync lane's retry policies (issue 14's ladder), the seed's first; see SyncRetrySettings.
RetryPolicy = Literal[
    "seed", "none", "full_jitter", "budget", "token_bucket", "adaptive", "breaker", "deadline"
]
RETRY_POLICIES: tuple[str, ...] = get_args(RetryPolicy)


class RetryBudgetSettings(_Frozen):
    """Finagle's RetryBudget: retries at most ``ratio`` of the calls made in the last
    ``window_s`` (Finagle's TTL, 10 s), plus a reserve of ``min_retries_per_s`` x ``window_s``
    retries so a client with little traffic can still retry.  Finagle's default floor is 10 per
    second, sized for its RPC rates; ours is 0.5 (5 retries per window), since the seed's
    checkout calls each dependency only a few times a second and a floor of 10 would allow
    every retry."""

    ratio: float = Field(default=0.1, gt=0, le=1)
    min_retries_per_s: float = Field(default=0.5, ge=0)
    window_s: float = Field(default=10.0, gt=0)


class TokenBucketSettings(_Frozen):
    """AWS SDK standard retry mode's retry quota: ``capacity`` tokens; a retry costs
    ``retry_cost`` (``timeout_cost`` after a timeout); a success refunds ``success_refund`` (a
    success after retries refunds what its last retry cost instead)."""

    capacity: int = Field(default=500, gt=0)
    retry_cost: int = Field(default=5, ge=0)
    timeout_cost: int = Field(default=10, ge=0)
    success_refund: int = Field(default=1, ge=0)


class AdaptiveThrottleSettings(_Frozen):
    """Client-side throttling (Google SRE book, "Handling Overload"): requests and accepts
    over the last ``window_s`` (the book's 2 minutes); reject locally with probability
    max(0, (requests - k x accepts) / (requests + 1))."""

    k: float = Field(default=2.0, ge=1)
    window_s: float = Field(default=120.0, gt=0)


class SyncRetrySettings(RetrySettings):
    """The sync lane's retries: the seed's numbers, and a named ``policy`` layered on them.

    ``seed`` runs ``attempts``, ``backoff_ms`` and ``jitter`` as given (today's behaviour);
    ``none`` makes one attempt; ``full_jitter`` forces full jitter; ``budget``, ``token_bucket``
    and ``adaptive`` gate retries (or attempts) with their sub-settings; ``breaker`` turns on
    the circuit breaker with ``sync.breaker``'s numbers; ``deadline`` sends each call's
    remaining time (``X-Deadline-Ms``) and starts no attempt after the order's deadline.
    """

    policy: RetryPolicy = "seed"
    budget: RetryBudgetSettings = RetryBudgetSettings()
    token_bucket: TokenBucketSettings = TokenBucketSettings()
    adaptive: AdaptiveThrottleSettings = AdaptiveThrottleSettings()

    @property
    def attempts_allowed(self) -> int:
        """Attempts per call the policy allows at most: 1 for ``none``, else ``attempts``."""
        return 1 if self.policy == "none" else self.attempts

    @property
    def jitter_applied(self) -> Literal["none", "full"]:
        return "full" if self.policy == "full_jitter" else self.jitter


class BreakerSettings(_Frozen):
    """Circuit breaker per dependency: closed -> open after N consecutive failures -> half-open."""

    enabled: bool = False
    failure_threshold: int = Field(default=5, ge=1)
    open_s: float = Field(default=5.0, gt=0)


class SyncLaneSettings(_Frozen):
    threads: int = Field(default=16, ge=1, le=1024)
    queue: int = Field(default=64, ge=0)
    timeout_s: float = Field(default=5.0, gt=0)
    retry: SyncRetrySettings = SyncRetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    # The naive chain sends no idempotency key, so a retried payment can charge twice.
    idempotency_keys: bool = False

    @property
    def breaker_applied(self) -> BreakerSettings:
        """``breaker``, switched on when the retry policy is ``breaker``."""
        if self.retry.policy == "breaker" and not self.breaker.enabled:
            return self.breaker.model_copy(update={"enabled": True})
        return self.breaker


class WorkerRetrySettings(_Frozen):
    """A worker's retries: growing delay, capped, then the message is dead-lettered."""

    max_attempts: int = Field(default=12, ge=1)
    initial_delay_s: float = Field(default=0.25, gt=0)
    max_delay_s: float = Field(default=15.0, gt=0)


class AsyncLaneSettings(_Frozen):
    """The critical path (payment, by default) is called before the 202; workers do the rest."""

    critical_timeout_s: float = Field(default=5.0, gt=0)
    critical_retry: RetrySettings = RetrySettings()
    prefetch: int = Field(default=32, ge=1, le=10_000)
    worker_timeout_s: float = Field(default=5.0, gt=0)
    worker_retry: WorkerRetrySettings = WorkerRetrySettings()
    relay_batch: int = Field(default=200, ge=1)


class PortSettings(_Frozen):
    """Every port is derived from ``base`` unless named in ``overrides`` (see topology)."""

    host: Literal["127.0.0.1"] = "127.0.0.1"
    base: int = Field(default=21000, ge=1024, le=65000)
    toxiproxy_api: int = Field(default=8474, ge=1, le=65535)
    overrides: dict[str, int] = Field(default_factory=dict)


class StackSettings(_Frozen):
    """Everything the harness starts, in one value: written to the stack file at ``up``."""

    time_scale: float = Field(default=1.0, gt=0, le=10)
    broker: Broker = "rabbitmq"
    chain: dict[str, DependencySettings] = Field(default_factory=lambda: dict(SEED_CHAIN))
    critical: tuple[str, ...] = ("payment",)
    sync: SyncLaneSettings = SyncLaneSettings()
    async_: AsyncLaneSettings = Field(default=AsyncLaneSettings(), alias="async")
    ports: PortSettings = PortSettings()
    # The system under test; None is the built-in checkout (systems/checkout.yaml).
    system: SystemSpec | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def builtin(self) -> bool:
        """Is the system the built-in paired checkout (its targets, broker and chain)?"""
        return self.system is None or self.system.builtin is not None

    @property
    def keeps_ledger(self) -> bool:
        """Does the system keep an order ledger (lost orders, duplicates, drains)?"""
        return self.system is None or self.system.ledger

    @model_validator(mode="after")
    def _critical_in_chain(self) -> StackSettings:
        unknown = [name for name in self.critical if name not in self.chain]
        if unknown:
            raise ValueError(f"critical dependencies {unknown} are not in chain {list(self.chain)}")
        if not self.chain:
            raise ValueError("chain needs at least one dependency")
        return self

    @property
    def deferred(self) -> tuple[str, ...]:
        """Dependencies the async lane hands to workers: the chain less the critical path."""
        return tuple(name for name in self.chain if name not in self.critical)

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale
