"""The asyncio twin of the sync lane's blocking client: one dependency call, with the same
timeout, retry and back-off rules (``targets.resilience``)."""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Any

import aiohttp

from model.settings import RetrySettings
from targets.metrics import DownstreamCallMetrics
from targets.resilience import CallFailed, backoff_delay, outcome_for_status, retryable

__all__ = ["AsyncDependencyClient"]


class AsyncDependencyClient:
    def __init__(
        self,
        *,
        lane: str,
        urls: dict[str, str],
        timeout_s: float,
        time_scale: float,
        metrics: DownstreamCallMetrics,
        rng: random.Random | None = None,
    ) -> None:
        """``rng``: the back-off jitter's draws (the process's ``retry`` stream, seeded from
        the run's seed; a fresh generator if not given)."""
        self.lane = lane
        self.urls = urls
        # aiohttp rounds a timeout of 5 s or more up to a whole second of its loop's clock
        # (ceil_threshold), so the seed's 5 s timeout fired anywhere in 5-6 s; never round.
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=math.inf)
        self.timeout_s = timeout_s
        self.time_scale = time_scale
        self.metrics = metrics
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        metrics.declare(lane, tuple(urls))

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512), raise_for_status=False
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, dep: str, payload: dict[str, Any], retry: RetrySettings) -> dict[str, Any]:
        """POST ``payload`` to ``dep``; returns its JSON or raises CallFailed."""
        assert self._session is not None, "start() first"
        outcome, detail = "ok", ""
        for attempt in range(1, retry.attempts + 1):
            if attempt > 1:
                self.metrics.retries.labels(self.lane, dep).inc()
            started = time.perf_counter()
            try:
                async with self._session.post(self.urls[dep], json=payload, timeout=self.timeout) as response:
                    outcome, detail = outcome_for_status(response.status), f"HTTP {response.status}"
                    result: dict[str, Any] = await response.json() if outcome == "ok" else {}
            except TimeoutError:
                outcome, detail = "timeout", f"no answer in {self.timeout_s:g}s"
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                outcome, detail = "connect_error", type(exc).__name__
            self.metrics.latency.labels(self.lane, dep).observe(time.perf_counter() - started)
            self.metrics.attempts.labels(self.lane, dep, outcome).inc()
            if outcome == "ok":
                return result
            if not retryable(outcome) or attempt == retry.attempts:
                raise CallFailed(dep, outcome, attempt, detail)
            await asyncio.sleep(backoff_delay(retry, attempt, self.time_scale, self._rng))
        raise AssertionError("unreachable: the loop returns or raises")
