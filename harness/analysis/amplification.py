"""Retry amplification at one hop: what a retry policy allows, and what a run measured.

Amplification is the attempts that went out to one dependency per *offered arrival* (a
shopper's first attempt, by its intended start): 1 when nothing retries.  Every attempt of a
shopper (the first and each impatient retry, ``r`` of them at most) is a new order the lane
runs, so its calls at one hop multiply: ``A x (1 + r)`` for ``A`` attempts per call.

The largest amplification each sync-lane retry policy allows (:func:`policy_bound`):

- ``seed``: the seed's ``callDownstreamService``, 3 attempts per call: ``A x (1 + r)``.
- ``none``: one attempt per call: ``1 x (1 + r)``.
- ``full_jitter``: jitter spreads the retries in time, it does not make fewer (Brooker,
  "Exponential Backoff And Jitter", AWS Architecture Blog, 2015): ``A x (1 + r)``.
- ``breaker``: ``A x (1 + r)`` until it opens; while open nothing goes out but one trial call
  per ``open_s`` (Nygard, "Release It!", ch. 5, Circuit Breaker).
- ``deadline``: the caller's remaining time can only cut retries short: ``A x (1 + r)``.
- ``budget``: retries at most ``ratio`` of the calls plus a floor of ``min_retries_per_s``
  (Finagle's RetryBudget, percentCanRetry and minRetriesPerSec; Envoy's retry_budget,
  budget_percent and min_retry_concurrency): ``(1 + ratio) x (1 + r) + floor x T / N`` over
  ``N`` arrivals in ``T`` s.
- ``token_bucket``: the AWS SDKs' standard retry mode (AWS SDKs and Tools Reference Guide,
  "Retry behavior": a quota of 500, a retry costs 5, one after a timeout 10, a success gives
  back 1): the full bucket pays for ``capacity / retry_cost`` retries (100; 50 after
  timeouts), then only refunds do, at most one per call: ``(1 + r) x (1 + refund / cost) +
  capacity / (cost x N)``.
- ``adaptive``: client-side throttling (Beyer et al., "Site Reliability Engineering", ch. 21,
  "Handling Overload"): a call is refused locally with probability
  ``max(0, (requests - K x accepts) / (requests + 1))``, so over its history window what goes
  out tends to ``K x accepts``, and accepts are at most one per call: ``K x (1 + r)`` in
  expectation.  A window ``W`` longer than the trigger's ``T`` still remembers the accepts
  before it, and lets through ``(K - 1) x (W - T) / T`` more per arrival.  When nothing is
  accepted any more, local refusal tends to 1.

Each bound is also at most ``A x (1 + r)``: the policies gate retries within the attempts a
call may make.  Durations in the settings (a window) are taken as the run scales them, times
its time scale; rates (a floor per second) divided by it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "POLICIES",
    "Bound",
    "Policy",
    "async_bound",
    "attempts_between",
    "policy_bound",
    "window_amplification",
]

Policy = Literal["seed", "none", "full_jitter", "budget", "token_bucket", "adaptive", "breaker", "deadline"]
POLICIES: tuple[Policy, ...] = (
    "seed", "none", "full_jitter", "budget", "token_bucket", "adaptive", "breaker", "deadline",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Bound:
    """The most attempts per offered arrival a policy lets go out at one hop, and how that
    follows; ``value`` None when it can not be given (``basis`` says why)."""

    value: float | None
    basis: str


def policy_bound(
    policy: str,
    *,
    attempts: int,
    impatient_retries: int,
    window_s: float | None = None,
    window_arrivals: int | None = None,
    time_scale: float = 1.0,
    budget_ratio: float = 0.1,
    budget_min_retries_per_s: float = 0.0,
    token_capacity: float = 500,
    token_retry_cost: float = 5,
    token_success_refund: float = 1,
    adaptive_k: float = 2.0,
    adaptive_window_s: float = 120.0,
) -> Bound:
    """The largest amplification per offered arrival at one hop that ``policy`` allows (the
    module's docstring gives each rule and its source).

    ``attempts``: per call (the seed's 3); ``impatient_retries``: each shopper's own;
    ``window_s`` and ``window_arrivals``: the window the bound is for (the trigger's) and the
    offered arrivals in it, which the budget's floor, the token bucket's initial tokens and
    the adaptive throttle's memory are spread over.

    >>> policy_bound("seed", attempts=3, impatient_retries=1).value
    6.0
    >>> policy_bound("token_bucket", attempts=3, impatient_retries=1, window_s=10, window_arrivals=200).value
    2.9
    """
    shopper = 1 + impatient_retries
    most = attempts * shopper
    calls = f"{attempts} attempts per call x {shopper} shopper attempts"
    if policy in ("seed", "full_jitter", "deadline"):
        why = {
            "seed": "the seed's retries",
            "full_jitter": "jitter moves retries in time, it does not remove any",
            "deadline": "a spent deadline can only cut retries short",
        }[policy]
        return Bound(value=float(most), basis=f"{calls}, {why}")
    if policy == "breaker":
        return Bound(
            value=float(most), basis=f"{calls} until the breaker opens; while open, one trial per open_s"
        )
    if policy == "none":
        return Bound(value=float(shopper), basis=f"1 attempt per call x {shopper} shopper attempts")
    known = window_s is not None and window_s > 0 and bool(window_arrivals)
    if policy == "budget":
        if budget_min_retries_per_s > 0 and not known:
            return Bound(
                value=None, basis="a retry budget's floor needs the window's arrivals, and it had none"
            )
        floor = budget_min_retries_per_s / time_scale * (window_s or 0) / (window_arrivals or 1)
        value = (1 + budget_ratio) * shopper + floor
        basis = f"(1 + {budget_ratio:g} budget) x {shopper} shopper attempts + floor {floor:.2f}"
        return _capped(value, basis, most)
    if policy == "token_bucket":
        if not known:
            return Bound(
                value=None, basis="a token bucket's first tokens need the window's arrivals, and it had none"
            )
        assert window_arrivals is not None
        retries = token_capacity / (token_retry_cost * window_arrivals)
        value = shopper * (1 + token_success_refund / token_retry_cost) + retries
        basis = (
            f"{shopper} shopper attempts x (1 + {token_success_refund:g} refund / {token_retry_cost:g} per "
            f"retry) + {token_capacity:g} tokens / {token_retry_cost:g} over {window_arrivals} arrivals"
        )
        return _capped(value, basis, most)
    if policy == "adaptive":
        if not known:
            return Bound(value=None, basis="the throttle's memory needs the window's length and arrivals")
        assert window_s is not None
        memory = adaptive_window_s * time_scale
        remembered = (adaptive_k - 1) * max(0.0, memory - window_s) / window_s
        value = (adaptive_k + remembered) * shopper
        basis = (
            f"(K {adaptive_k:g} + {remembered:.2f} from accepts remembered over its {memory:g} s window) "
            f"x {shopper} shopper attempts, in expectation"
        )
        return _capped(value, basis, most)
    return Bound(value=None, basis=f"no theory for a policy named {policy!r}")


def _capped(value: float, basis: str, most: int) -> Bound:
    if value >= most:
        return Bound(value=float(most), basis=f"{basis}, capped at the {most} attempts calls may make")
    return Bound(value=round(value, 3), basis=basis)


def async_bound(
    *, critical: bool, critical_attempts: int, worker_attempts: int, impatient_retries: int
) -> Bound:
    """The async lane's bound at one hop: a critical dependency is called before the 202 with
    ``critical_attempts`` per call; any other by a worker, ``worker_attempts`` per message.
    A message delivered again (a worker restart, an unconfirmed step event) may start its
    attempts over: redeliveries are not in the bound."""
    shopper = 1 + impatient_retries
    if critical:
        basis = f"{critical_attempts} attempts per critical call x {shopper} shopper attempts"
        return Bound(value=float(critical_attempts * shopper), basis=basis)
    basis = f"{worker_attempts} worker attempts per message x {shopper} shopper attempts, redeliveries aside"
    return Bound(value=float(worker_attempts * shopper), basis=basis)


def attempts_between(
    times: Sequence[float], counts: Sequence[float | None], start: float, end: float
) -> float | None:
    """Attempts made from ``start`` to ``end``, the cumulative ``counts`` read at ``times``
    interpolated linearly between readings; None outside the readings or where a count is
    not known.

    >>> attempts_between([0, 2, 4], [0, 10, 30], 1, 3)
    15.0
    """

    def at(x: float) -> float | None:
        if not times or x < times[0] or x > times[-1]:
            return None
        i = bisect.bisect_left(times, x)
        if times[i] == x:
            return counts[i]
        lo, hi = counts[i - 1], counts[i]
        if lo is None or hi is None:
            return None
        return lo + (hi - lo) * (x - times[i - 1]) / (times[i] - times[i - 1])

    a, b = at(start), at(end)
    return None if a is None or b is None else max(0.0, b - a)


def window_amplification(
    arrivals: Sequence[float],
    times: Sequence[float],
    counts: Sequence[float | None],
    start: float,
    end: float,
) -> tuple[float | None, str | None]:
    """``(attempts at the hop per offered arrival in [start, end), why None)``: ``arrivals``
    are the offered arrivals' intended starts. No arrival in the window: None, never 0.

    >>> window_amplification([0.5, 1.5, 2.5], [0, 4], [0, 12], 0, 3)
    (3.0, None)
    """
    offered = sum(1 for t in arrivals if start <= t < end)
    if offered == 0:
        return None, f"no arrivals were offered in {start:.1f}-{end:.1f} s"
    made = attempts_between(times, counts, start, end)
    if made is None:
        return None, f"the attempts over {start:.1f}-{end:.1f} s are not known (no counter readings cover it)"
    return round(made / offered, 3), None
