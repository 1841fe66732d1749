"""The live view: a page on loopback of every panel of the catalogue, both lanes side by side,
drawn live from the stack's Prometheus, with the faults in force, the run's stage and verdicts.

The supervisor runs it as a process of the stack (:mod:`harness.live.server`, ``live`` in
:attr:`model.topology.Topology.processes`); it is never part of the system under test.  Endpoints::

    GET  /                    the page (harness/live/page), with this server's token in it
    GET  /assets/NAME         the page's script and style, and uPlot from .tools/npm
    GET  /health              200 once serving
    GET  /api/config          lanes, panels (their layout), dependencies, fault types
    GET  /api/series          ?panel=KEY&range=SECONDS: one panel's series (the catalogue's queries)
    GET  /api/fault-windows   ?range=SECONDS: per lane, when a fault was in force (doorbuster_toxic_active)
    GET  /api/state           the faults in force (who applied them) and the run's status
    POST /api/faults          add a fault: {"dependency", "type", "lane", "attributes", ...}
    POST /api/faults/remove   remove faults: {"dependency", "lane", "name"?}

A request that changes anything must come from the page itself: its ``Origin`` (or
``Sec-Fetch-Site``) must be this server's own and it must carry the token embedded in the
page (``X-Doorbuster-Token``), else 403.  Every request must name this server in ``Host``
(a page of another site can not reach it by a name that resolves to loopback).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jinja2
from aiohttp import web

from harness.binaries import PROJECT_ROOT
from harness.live.series import MAX_RANGE_S, MIN_RANGE_S, SeriesSource, fault_windows, layout_of, panel_series
from harness.metrics.panels import Panel, panels_for
from harness.run.status import RunStatus
from model.errors import ConfigError, DoorbusterError
from model.faults import HTTP_FAULTS, STREAMS, TOXIC_TYPES, FaultSpec
from model.json_values import object_of, refuse_unknown, text_value
from model.lanes import parse_lanes
from model.topology import Topology

__all__ = ["FaultDesk", "LiveView", "build_live_app", "fault_spec_of", "new_token", "removal_of"]

PAGE_DIR = Path(__file__).parent / "page"
UPLOT_DIR = PROJECT_ROOT / ".tools" / "npm" / "node_modules" / "uplot" / "dist"
TOKEN_HEADER = "X-Doorbuster-Token"
_PAGE_ASSETS = {"live.js": "text/javascript", "live.css": "text/css"}
_UPLOT_ASSETS = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}
_MAX_BODY = 16 * 1024
_REMOVE_FIELDS = {"dependency", "lane", "name"}


class FaultDesk(Protocol):
    """The stack's faults, through the CLI's own code path (:mod:`harness.faults.actions`)."""

    def active(self) -> list[dict[str, Any]]: ...
    def add(self, spec: FaultSpec) -> list[dict[str, Any]]: ...
    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None) -> int: ...


@dataclass(frozen=True, kw_only=True)
class LiveView:
    """What the live server serves: the stack's topology and where its data comes from."""

    topology: Topology
    token: str
    series: SeriesSource
    faults: FaultDesk
    run_status: Callable[[], RunStatus | None]
    uplot_dir: Path = UPLOT_DIR
    clock: Callable[[], float] = time.time

    @property
    def panels(self) -> tuple[Panel, ...]:
        return panels_for(self.topology.builtin)

    @property
    def origins(self) -> frozenset[str]:
        port = self.topology.ports["live"]
        return frozenset({f"http://{self.topology.endpoint('live').host}:{port}", f"http://localhost:{port}"})

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(o.removeprefix("http://") for o in self.origins)


_VIEW = web.AppKey("view", LiveView)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# -- request bodies --------------------------------------------------------------------------
def fault_spec_of(body: Any, topology: Topology) -> FaultSpec:
    """A fault to add, from the page's JSON, validated as ``doorbuster toxic add`` validates it."""
    return FaultSpec.from_json(body).validate(topology)


def removal_of(body: Any, topology: Topology) -> tuple[str, tuple[str, ...], str | None]:
    """(dependency, lanes, name or None for every fault) to remove, from the page's JSON."""
    body = object_of(body)
    refuse_unknown(body, _REMOVE_FIELDS)
    dependency = str(text_value(body, "dependency", expected="a dependency's name", required=True))
    lanes = parse_lanes(body.get("lane", "both"))
    for lane in topology.lanes_with(dependency, lanes):
        topology.proxy(lane, dependency)
    name = text_value(body, "name", expected="a fault's name or type", required=False)
    return dependency, topology.lanes_with(dependency, lanes), name


# -- guards ----------------------------------------------------------------------------------
@web.middleware
async def _guard(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    view = request.app[_VIEW]
    if request.host not in view.hosts:
        return _error(403, f"this server answers to {', '.join(sorted(view.hosts))} only")
    if request.method not in ("GET", "HEAD"):
        refusal = _cross_origin(request, view)
        if refusal is not None:
            return _error(403, refusal)
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException:
        raise
    except ConfigError as exc:
        return _error(400, str(exc))
    except DoorbusterError as exc:
        return _error(503, f"{type(exc).__name__}: {exc}")
    return response


def _cross_origin(request: web.Request, view: LiveView) -> str | None:
    """Why a state-changing request is refused, or None: it must be the page's own."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None and site != "same-origin":
        return f"refused: a {site} request may not change the stack"
    if origin is not None and origin not in view.origins:
        return f"refused: origin {origin} is not this page's"
    if origin is None and site is None:
        return "refused: no Origin; faults are changed from the page, or with doorbuster toxic"
    token = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(token.encode(), view.token.encode()):
        return f"refused: missing or wrong {TOKEN_HEADER}; reload the page"
    return None


async def _json_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise ConfigError(f"body too large (at most {_MAX_BODY} bytes)")
    try:
        return json.loads(await request.text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"body is not JSON: {exc}") from None


def _range_of(request: web.Request) -> float:
    raw = request.query.get("range", "300")
    try:
        range_s = float(raw)
    except ValueError:
        raise ConfigError(f"range: expected seconds, got {raw!r}") from None
    if not MIN_RANGE_S <= range_s <= MAX_RANGE_S:
        raise ConfigError(f"range: from {MIN_RANGE_S} to {MAX_RANGE_S} seconds, got {raw}")
    return range_s


# -- handlers --------------------------------------------------------------------------------
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(PAGE_DIR), autoescape=True, undefined=jinja2.StrictUndefined
)


async def _page(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    topo = view.topology
    html = _templates.get_template("index.html").render(
        token=view.token,
        system=topo.system.name if topo.system is not None else "checkout",
        lanes=topo.lanes,
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _asset(request: web.Request) -> web.StreamResponse:
    view = request.app[_VIEW]
    name = request.match_info["name"]
    if name in _PAGE_ASSETS:
        path, kind = PAGE_DIR / name, _PAGE_ASSETS[name]
    elif name in _UPLOT_ASSETS:
        path, kind = view.uplot_dir / name, _UPLOT_ASSETS[name]
    else:
        return _error(404, f"no asset {name!r}")
    try:
        body = path.read_bytes()
    except OSError:
        return _error(404, f"{path} is missing: run `make setup` (it installs uPlot from npm)")
    return web.Response(body=body, content_type=kind)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _config(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    topo = view.topology
    return web.json_response(
        {
            "lanes": list(topo.lanes),
            "panels": [layout_of(p).as_json() for p in view.panels],
            "dependencies": {lane: list(topo.dependencies(lane)) for lane in topo.lanes},
            "fault_types": {name: schema for name, schema in {**TOXIC_TYPES, **HTTP_FAULTS}.items()},
            "streams": list(STREAMS),
            "range": {"min": MIN_RANGE_S, "max": MAX_RANGE_S},
        }
    )


def _panel_of(view: LiveView, key: str) -> Panel:
    for panel in view.panels:
        if panel.key == key:
            return panel
    raise ConfigError(f"panel: no panel {key!r}; panels are {', '.join(p.key for p in view.panels)}")


async def _series(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    panel = _panel_of(view, request.query.get("panel", ""))
    range_s = _range_of(request)
    data = await asyncio.to_thread(panel_series, view.series, panel, range_s, view.clock())
    return web.json_response(data)


async def _fault_windows(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    range_s = _range_of(request)
    data = await asyncio.to_thread(
        panel_series, view.series, _panel_of(view, "faults"), range_s, view.clock()
    )
    return web.json_response({"windows": fault_windows(data["times"], data["series"])})


async def _state(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    faults = await asyncio.to_thread(view.faults.active)
    status = view.run_status()
    return web.json_response({"faults": faults, "run": None if status is None else status.as_json()})


async def _add_fault(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    spec = fault_spec_of(await _json_body(request), view.topology)
    added = await asyncio.to_thread(view.faults.add, spec)
    return web.json_response({"added": added})


async def _remove_faults(request: web.Request) -> web.Response:
    view = request.app[_VIEW]
    dependency, lanes, name = removal_of(await _json_body(request), view.topology)
    removed = await asyncio.to_thread(view.faults.remove, dependency, lanes, name)
    return web.json_response({"removed": removed})


def build_live_app(view: LiveView) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=_MAX_BODY)
    app[_VIEW] = view
    app.router.add_get("/", _page)
    app.router.add_get("/assets/{name}", _asset)
    app.router.add_get("/health", _health)
    app.router.add_get("/api/config", _config)
    app.router.add_get("/api/series", _series)
    app.router.add_get("/api/fault-windows", _fault_windows)
    app.router.add_get("/api/state", _state)
    app.router.add_post("/api/faults", _add_fault)
    app.router.add_post("/api/faults/remove", _remove_faults)
    return app


def new_token() -> str:
    return secrets.token_urlsafe(24)
