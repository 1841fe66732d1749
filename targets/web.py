"""What every target process shares: ``/health``, ``/metrics``, JSON errors, a clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = [
    "MAX_BODY_BYTES",
    "REGISTRY_KEY",
    "RequestRefused",
    "base_app",
    "json_error",
    "read_json_object",
    "serve",
]

log = logging.getLogger(__name__)

# Orders are small; anything larger is refused with 413 before it is read.
MAX_BODY_BYTES = 64 * 1024
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
READY_KEY: web.AppKey[Callable[[], bool]] = web.AppKey("ready")


def json_error(status: int, error: str, **fields: Any) -> web.Response:
    return web.json_response({"error": error, **fields}, status=status)


class RequestRefused(Exception):
    """A request a client got wrong: answered with ``status`` and a JSON body naming why."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def response(self) -> web.Response:
        return json_error(self.status, self.error, detail=self.detail)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or :class:`RequestRefused` saying what is wrong with it."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestRefused(413, "body_too_large", f"at most {MAX_BODY_BYTES} bytes") from exc
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRefused(400, "malformed_json", str(exc)[:200]) from exc
    if not isinstance(body, dict):
        raise RequestRefused(400, "malformed_json", "expected a JSON object")
    return body


async def _health(request: web.Request) -> web.Response:
    # Alive is 200 even without the broker: the async lane takes orders into its outbox while
    # the broker is away. ``ready`` says whether it has connected once; ``up`` waits for that.
    ready = request.app.get(READY_KEY)
    if ready is None:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "ok", "ready": ready()})


async def _metrics(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY_KEY]
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error a client can cause is answered in JSON with a 4xx, never a bare 500."""
    try:
        return await handler(request)
    except RequestRefused as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = (exc.reason or "error").lower().replace(" ", "_")
        return json_error(exc.status, error, detail=exc.text or exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal_error")


def base_app(
    registry: CollectorRegistry,
    spec: dict[str, Any] | None = None,
    *,
    ready: Callable[[], bool] | None = None,
) -> web.Application:
    """An app with ``/health``, ``/metrics`` and, given its OpenAPI description, ``/openapi.json``.
    ``ready``: whether it has connected to what it needs once (``/health`` says so)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_json_errors])
    app[REGISTRY_KEY] = registry
    if ready is not None:
        app[READY_KEY] = ready
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    if spec is not None:

        async def _openapi(request: web.Request) -> web.Response:
            return web.json_response(spec)

        app.router.add_get("/openapi.json", _openapi)
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
