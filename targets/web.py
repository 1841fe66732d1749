"""What every target process shares: ``/health``, ``/metrics``, JSON errors, a clean stop."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = [
    "MAX_BODY_BYTES",
    "REGISTRY_KEY",
    "base_app",
    "json_error",
    "read_json_object",
    "serve",
]

# Orders are small; anything larger is refused with 413 before it is read.
MAX_BODY_BYTES = 64 * 1024
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)


def json_error(status: int, error: str, **fields: Any) -> web.Response:
    return web.json_response({"error": error, **fields}, status=status)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or an HTTP 4xx that says what is wrong with it."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "malformed_json", "detail": str(exc)[:200]}),
            content_type="application/json",
        ) from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "malformed_json", "detail": "expected a JSON object"}),
            content_type="application/json",
        )
    return body


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def base_app(registry: CollectorRegistry) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[REGISTRY_KEY] = registry
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    return app


async def serve(
    app: web.Application,
    host: str,
    port: int,
    on_started: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``app`` on host:port until SIGTERM or SIGINT, then stop it cleanly."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    if on_started is not None:
        await on_started()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
