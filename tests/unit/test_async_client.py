"""The async lane's dependency client keeps the seed's timeouts to the millisecond."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from model.settings import RetrySettings
from targets.async_client import AsyncDependencyClient
from targets.metrics import DownstreamCallMetrics
from targets.resilience import CallFailed


async def test_a_timeout_of_five_seconds_or_more_fires_on_time_not_on_a_whole_second() -> None:
    """aiohttp rounds such a timeout up to its loop clock's next whole second unless told not
    to; two calls started half a second apart can not both be on time if it does."""

    async def never(_: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_post("/", never)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = AsyncDependencyClient(
        lane="async", urls={"email": f"http://127.0.0.1:{port}/"}, timeout_s=5.3, time_scale=1.0,
        metrics=DownstreamCallMetrics(CollectorRegistry()),
    )  # fmt: skip
    await client.start()

    async def timed(delay: float) -> float:
        await asyncio.sleep(delay)
        started = time.monotonic()
        with pytest.raises(CallFailed, match="timeout"):
            await client.call("email", {}, RetrySettings(attempts=1))
        return time.monotonic() - started

    try:
        took = await asyncio.gather(timed(0.0), timed(0.5))
    finally:
        await client.close()
        await runner.cleanup()
    assert all(5.3 <= t < 5.45 for t in took), took
