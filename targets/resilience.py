"""Timeouts, retries and the circuit breaker: the policies both lanes' clients share.

The attempt loops themselves live next to their HTTP clients (a blocking one for the sync
lane's threads, an asyncio one for the async lane), because one blocks and one awaits; what
counts as retryable, how long to wait, and when the breaker opens are decided here, once.

The sync lane's retry policies (``sync.retry.policy``) are here too: a retry budget, a retry
token bucket, adaptive client-side throttling and deadline propagation, each kept per
dependency in a :class:`DependencyRetryPolicy` that the lane's threads share.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from model.headers import DEADLINE_HEADER
from model.settings import (
    AdaptiveThrottleSettings,
    BreakerSettings,
    RetryBudgetSettings,
    RetrySettings,
    SyncRetrySettings,
    TokenBucketSettings,
)

__all__ = [
    "AdaptiveThrottle",
    "BreakerState",
    "CallFailed",
    "CallState",
    "CircuitBreaker",
    "DependencyRetryPolicy",
    "RetryBudget",
    "RetryTokenBucket",
    "SlidingCount",
    "attempt_timeout_s",
    "backoff_delay",
    "deadline_header_value",
    "longest_call_s",
    "outcome_for_status",
    "parse_deadline_ms",
    "retryable",
    "throttle_probability",
]

# A day: anything longer is not a deadline a checkout has.
_MAX_DEADLINE_MS = 86_400_000


class CallFailed(Exception):
    """A dependency call that failed after every attempt it was allowed."""

    def __init__(self, dependency: str, outcome: str, attempts: int, detail: str = "") -> None:
        super().__init__(f"{dependency}: {outcome} after {attempts} attempt(s) {detail}".strip())
        self.dependency = dependency
        self.outcome = outcome
        self.attempts = attempts
        self.detail = detail

    @property
    def http_status(self) -> int:
        """What the order service answers: 504 for a timeout or a passed deadline, else 502."""
        return 504 if self.outcome in ("timeout", "deadline_exceeded") else 502

    def as_json(self) -> dict[str, object]:
        errors = {"timeout": "dependency_timeout", "deadline_exceeded": "deadline_exceeded"}
        return {
            "error": errors.get(self.outcome, "dependency_failed"),
            "dependency": self.dependency,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "detail": self.detail,
        }


def outcome_for_status(status: int) -> str:
    if status < 400:
        return "ok"
    return "http_4xx" if status < 500 else "http_5xx"


def retryable(outcome: str) -> bool:
    """The seed's rule: retry timeouts, connection errors and 5xx; never a 4xx."""
    return outcome in ("http_5xx", "timeout", "connect_error")


def backoff_delay(
    retry: RetrySettings,
    failed_attempt: int,
    time_scale: float,
    rng: random.Random,
    *,
    jitter: str | None = None,
) -> float:
    """Seconds to wait after a failed attempt; with ``full`` jitter (``jitter`` or else
    ``retry.jitter``), uniform in [0, step]."""
    step = retry.backoff_s(failed_attempt) * time_scale
    return rng.uniform(0.0, step) if (jitter or retry.jitter) == "full" else step


def longest_call_s(retry: RetrySettings, timeout_s: float, time_scale: float) -> float:
    """The longest one dependency call can take: every attempt timing out, every back-off."""
    backoffs = sum(retry.backoff_s(attempt) for attempt in range(1, retry.attempts))
    return retry.attempts * timeout_s + backoffs * time_scale


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Closed, open after ``failure_threshold`` consecutive failures, half-open after ``open_s``.

    Half-open lets one trial call through; its success closes the breaker, its failure opens
    it again.  Thread-safe: the sync lane's threads share one breaker per dependency.

    >>> b = CircuitBreaker(BreakerSettings(enabled=True, failure_threshold=2, open_s=1))
    >>> b.record(False); b.record(False); b.allow()
    False
    """

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.settings = settings
        self._open_s = settings.open_s * time_scale
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def allow(self) -> bool:
        """May a call go out now?  Always true when the breaker is disabled."""
        if not self.settings.enabled:
            return True
        with self._lock:
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self._open_s:
                    return False
                self._set(BreakerState.HALF_OPEN)
            if self._state is BreakerState.HALF_OPEN:
                if self._trial_out:
                    return False
                self._trial_out = True
            return True

    def record(self, success: bool) -> None:
        if not self.settings.enabled:
            return
        with self._lock:
            self._trial_out = False
            if success:
                self._failures = 0
                if self._state is not BreakerState.CLOSED:
                    self._set(BreakerState.CLOSED)
                return
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.settings.failure_threshold:
                self._opened_at = self._clock()
                self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)


class SlidingCount:
    """How many events happened in the last ``window_s`` seconds, exactly: their times are kept
    (a few thousand at the lane's rates).  Not thread-safe: its owner holds a lock."""

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def add(self) -> None:
        self._times.append(self._clock())

    def count(self) -> int:
        horizon = self._clock() - self.window_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)


class RetryBudget:
    """Finagle's ``RetryBudget``: each call deposits, each retry withdraws, and a retry goes out
    only while ``reserve + ratio x calls - retries >= 1`` over the last ``window_s``; the
    reserve (``min_retries_per_s x window_s``) lets a quiet client retry at all.  So over any
    window, retries <= ratio x calls + reserve.

    The window is a duration the targets apply, so it follows the time scale; the reserve is a
    count per window and does not.  Thread-safe: one budget per dependency, shared by the
    lane's threads, as a Finagle client (one per destination service) holds one.

    >>> b = RetryBudget(RetryBudgetSettings(ratio=0.5, min_retries_per_s=0), clock=lambda: 0.0)
    >>> b.deposit(); b.deposit(); b.try_withdraw(), b.try_withdraw()
    (True, False)
    """

    def __init__(
        self,
        settings: RetryBudgetSettings,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reserve = settings.min_retries_per_s * settings.window_s
        window_s = settings.window_s * time_scale
        self._calls = SlidingCount(window_s, clock)
        self._retries = SlidingCount(window_s, clock)
        self._lock = threading.Lock()

    def deposit(self) -> None:
        """A call starts (its first attempt)."""
        with self._lock:
            self._calls.add()

    def balance(self) -> float:
        with self._lock:
            return self._balance()

    def _balance(self) -> float:
        return self.reserve + self.settings.ratio * self._calls.count() - self._retries.count()

    def try_withdraw(self) -> bool:
        """May a retry go out now?  If so, it is counted against the budget."""
        with self._lock:
            if self._balance() < 1:
                return False
            self._retries.add()
            return True


class RetryTokenBucket:
    """The AWS SDKs' standard retry mode's retry quota, with botocore's rule
    (``botocore/retries/standard.py``, ``RetryQuotaChecker``; the SDKs and Tools Reference
    Guide, "Retry behavior", describes the same quota): the bucket starts full at
    ``capacity`` (500); a retry takes ``retry_cost`` (5) tokens, ``timeout_cost`` (10) when the
    failed attempt timed out, and is not made when the bucket lacks them (the failure is
    returned); a call that succeeds without a retry puts back ``success_refund`` (1), one that
    succeeds after retries puts back what its last retry took; never above ``capacity``.
    A failed call puts back nothing.  Thread-safe: one bucket per dependency (the SDK keeps one
    per client, and a client talks to one service).
    """

    def __init__(self, settings: TokenBucketSettings) -> None:
        self.settings = settings
        self._tokens = settings.capacity
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        with self._lock:
            return self._tokens

    def acquire(self, failed_outcome: str) -> int | None:
        """Tokens taken for a retry after ``failed_outcome``, or ``None``: no retry."""
        cost = self.settings.timeout_cost if failed_outcome == "timeout" else self.settings.retry_cost
        with self._lock:
            if cost > self._tokens:
                return None
            self._tokens -= cost
            return cost

    def succeeded(self, last_retry_cost: int | None) -> None:
        """A call succeeded; ``last_retry_cost`` is what its last retry took (``None``: none)."""
        refund = self.settings.success_refund if last_retry_cost is None else last_retry_cost
        with self._lock:
            self._tokens = min(self.settings.capacity, self._tokens + refund)


def throttle_probability(requests: int, accepts: int, k: float) -> float:
    """The SRE book's client request rejection probability, max(0, (requests - k x accepts)
    / (requests + 1)).

    >>> round(throttle_probability(100, 20, 2.0), 4)
    0.5941
    """
    return max(0.0, (requests - k * accepts) / (requests + 1))


class AdaptiveThrottle:
    """Adaptive client-side throttling (Google SRE book, "Handling Overload"): requests and
    accepts over the last ``window_s``; before each attempt, reject it locally with
    :func:`throttle_probability`.  A local rejection counts as a request, as in the book, so
    a backend that accepts nothing sees its traffic fall towards zero, and one that accepts
    again sees it come back.  An accept is an answer that is not a failure (2xx or 4xx).

    The window follows the time scale.  Thread-safe: one per dependency.
    """

    def __init__(
        self,
        settings: AdaptiveThrottleSettings,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        window_s = settings.window_s * time_scale
        self._requests = SlidingCount(window_s, clock)
        self._accepts = SlidingCount(window_s, clock)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def probability(self) -> float:
        with self._lock:
            return throttle_probability(self._requests.count(), self._accepts.count(), self.settings.k)

    def admit(self) -> bool:
        """Count a request and decide it: ``False`` means rejected locally (not sent)."""
        with self._lock:
            p = throttle_probability(self._requests.count(), self._accepts.count(), self.settings.k)
            self._requests.add()
            return self._rng.random() >= p

    def accepted(self) -> None:
        with self._lock:
            self._accepts.add()


def parse_deadline_ms(text: str) -> float:
    """An ``X-Deadline-Ms`` value: milliseconds left, a number from 0 to a day."""
    try:
        ms = float(text)
    except ValueError:
        ms = math.nan
    if not math.isfinite(ms) or not 0 <= ms <= _MAX_DEADLINE_MS:
        raise ValueError(
            f"{DEADLINE_HEADER}: expected milliseconds from 0 to {_MAX_DEADLINE_MS}, got {text[:40]!r}"
        )
    return ms


def attempt_timeout_s(timeout_s: float, deadline: float | None, now: float) -> float:
    """An attempt's time: the per-call timeout, capped by what is left of the order's deadline
    (a monotonic time; ``None``: the order has none).  Zero or less: do not start it."""
    return timeout_s if deadline is None else min(timeout_s, deadline - now)


def deadline_header_value(seconds: float) -> str:
    """The header's value for ``seconds`` left, rounded down: a downstream never works past
    the moment its caller stops waiting."""
    return str(max(0, math.floor(seconds * 1000)))


@dataclass(kw_only=True)
class CallState:
    """One call's dealings with its dependency's policy."""

    last_retry_cost: int | None = None


class DependencyRetryPolicy:
    """One dependency's retry policy, shared by the sync lane's threads.

    The attempt loop asks :meth:`refusal` before each attempt (the breaker, the adaptive
    throttle), tells :meth:`record` each attempt's outcome, and asks :meth:`retry_denial`
    before each retry (the budget, the token bucket).  The deadline is the loop's own (it
    knows the order); :attr:`propagates_deadline` says whether to apply it.
    """

    def __init__(
        self,
        retry: SyncRetrySettings,
        breaker: CircuitBreaker,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        throttle_rng: random.Random | None = None,
    ) -> None:
        """``rng``: the back-off jitter's draws; ``throttle_rng``: the adaptive throttle's
        (seeded from ``rng`` if not given).  A process passes its seeded streams
        (:class:`targets.random_streams.RandomStreams`), so a run's seed fixes both sequences."""
        self.retry = retry
        self.breaker = breaker
        self.attempts = retry.attempts_allowed
        self.jitter = retry.jitter_applied
        self.time_scale = time_scale
        self.propagates_deadline = retry.policy == "deadline"
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.budget = (
            RetryBudget(retry.budget, time_scale=time_scale, clock=clock)
            if retry.policy == "budget"
            else None
        )
        self.tokens = RetryTokenBucket(retry.token_bucket) if retry.policy == "token_bucket" else None
        self.throttle = (
            # Its own generator: each is used under its own lock.
            AdaptiveThrottle(
                retry.adaptive,
                time_scale=time_scale,
                clock=clock,
                rng=throttle_rng or random.Random(self._rng.getrandbits(64)),
            )
            if retry.policy == "adaptive"
            else None
        )

    def start(self) -> CallState:
        """A call begins (before its first attempt)."""
        if self.budget is not None:
            self.budget.deposit()
        return CallState()

    def refusal(self) -> str | None:
        """Why the next attempt may not go out (an attempt outcome), or ``None``."""
        # The throttle first: a half-open breaker's allow() lets its one trial out, and a
        # trial the throttle then refused would never be recorded.
        if self.throttle is not None and not self.throttle.admit():
            return "throttled"
        if not self.breaker.allow():
            return "circuit_open"
        return None

    def record(self, call: CallState, outcome: str) -> None:
        """An attempt that went out ended with ``outcome``."""
        answered = outcome in ("ok", "http_4xx")
        self.breaker.record(answered)
        if self.throttle is not None and answered:
            self.throttle.accepted()
        if self.tokens is not None and outcome == "ok":
            self.tokens.succeeded(call.last_retry_cost)

    def retry_denial(self, call: CallState, failed_outcome: str) -> str | None:
        """Why a retry after ``failed_outcome`` may not be made (a denial reason), or ``None``."""
        if self.budget is not None and not self.budget.try_withdraw():
            return "budget"
        if self.tokens is not None:
            cost = self.tokens.acquire(failed_outcome)
            if cost is None:
                return "token_bucket"
            call.last_retry_cost = cost
        return None

    def backoff_s(self, failed_attempt: int) -> float:
        with self._rng_lock:
            return backoff_delay(self.retry, failed_attempt, self.time_scale, self._rng, jitter=self.jitter)
