"""Timeouts, retries and the circuit breaker: the policies both lanes' clients share.

The attempt loops themselves live next to their HTTP clients (a blocking one for the sync
lane's threads, an asyncio one for the async lane), because one blocks and one awaits; what
counts as retryable, how long to wait, and when the breaker opens are decided here, once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import IntEnum

from harness.settings import BreakerSettings, RetrySettings

__all__ = [
    "BreakerState",
    "CallFailed",
    "CircuitBreaker",
    "backoff_delay",
    "longest_call_s",
    "outcome_for_status",
    "retryable",
]


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
        """What the order service answers: 504 for a timeout, 502 for any other failure."""
        return 504 if self.outcome == "timeout" else 502

    def as_json(self) -> dict[str, object]:
        return {
            "error": "dependency_timeout" if self.outcome == "timeout" else "dependency_failed",
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


def backoff_delay(retry: RetrySettings, failed_attempt: int, time_scale: float, rng: random.Random) -> float:
    """Seconds to wait after a failed attempt; with ``full`` jitter, uniform in [0, step]."""
    step = retry.backoff_s(failed_attempt) * time_scale
    return rng.uniform(0.0, step) if retry.jitter == "full" else step


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
