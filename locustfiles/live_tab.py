"""The live view as a tab of Locust's own web UI, for ``locust -f`` users.

Locust's web UI is a Flask app (``environment.web_ui.app``) whose extension points are extra
routes and ``extended_tabs`` (a tab that shows a table).  The tab is added there, and a small
script (``locust_tab.js``, served with the live page's files) shows the live page in it, in an
iframe.  The page is the live server's own, proxied under ``/doorbuster-live/``: GETs go
through as they are; a fault change must come from Locust's own page (its Origin, or
``Sec-Fetch-Site: same-origin``) and carry the live page's token, as on the live server, and is
then passed on to the live server, which checks the token again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from flask import Blueprint, Response, request

if TYPE_CHECKING:
    from locust.web import WebUI

__all__ = ["TAB_KEY", "add_live_tab"]

TAB_KEY = "doorbuster-live"
PREFIX = f"/{TAB_KEY}"
TAB_SCRIPT = Path(__file__).resolve().parent.parent / "harness" / "live" / "page" / "locust_tab.js"
_TOKEN_HEADER = "X-Doorbuster-Token"
_STATE_CHANGES = ("api/faults", "api/faults/remove")
_PASSED_HEADERS = ("Content-Type", "Cache-Control")


def _from_this_page() -> str | None:
    """Why a state change sent to Locust's UI is refused, or None if it is the page's own."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    own = request.host_url.rstrip("/")
    if site is not None and site != "same-origin":
        return f"refused: a {site} request may not change the stack"
    if origin is not None and origin != own:
        return f"refused: origin {origin} is not this page's"
    if origin is None and site is None:
        return "refused: no Origin"
    return None


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, content_type="application/json")


def _answer(upstream: requests.Response) -> Response:
    headers = {k: v for k, v in upstream.headers.items() if k in _PASSED_HEADERS}
    return Response(upstream.content, status=upstream.status_code, headers=headers)


def live_blueprint(live_url: str) -> Blueprint:
    """``/doorbuster-live/...``: the live server at ``live_url``, proxied."""
    live_url = live_url.rstrip("/")
    tab = Blueprint("doorbuster_live", __name__, url_prefix=PREFIX)

    @tab.route("/locust_tab.js")
    def tab_script() -> Response:
        return Response(TAB_SCRIPT.read_text(), content_type="text/javascript")

    @tab.route("/", defaults={"path": ""}, methods=["GET"])
    @tab.route("/<path:path>", methods=["GET", "POST"])
    def proxied(path: str) -> Response:
        try:
            if request.method == "GET":
                return _answer(
                    requests.get(
                        f"{live_url}/{path}", params=list(request.args.items(multi=True)), timeout=15
                    )
                )
            if path not in _STATE_CHANGES:
                return _error(404, f"no {path} here")
            refusal = _from_this_page()
            if refusal is not None:
                return _error(403, refusal)
            headers = {
                "Content-Type": "application/json",
                "Origin": live_url,
                _TOKEN_HEADER: request.headers.get(_TOKEN_HEADER, ""),
            }
            return _answer(
                requests.post(f"{live_url}/{path}", data=request.get_data(), headers=headers, timeout=15)
            )
        except requests.RequestException as exc:
            message = f"the live view at {live_url} did not answer ({type(exc).__name__}); is the stack up?"
            return _error(502, message)

    return tab


def _with_tab_script(response: Response) -> Response:
    """Locust's own page (``/``) loads the script that shows the live page in the tab."""
    if request.path.rstrip("/") == request.script_root and response.content_type.startswith("text/html"):
        page = response.get_data(as_text=True)
        script = f'<script src=".{PREFIX}/locust_tab.js"></script></body>'
        response.set_data(page.replace("</body>", script, 1))
    return response


def add_live_tab(web_ui: WebUI, live_url: str) -> None:
    """Add the tab to Locust's web UI (``environment.web_ui``)."""
    if web_ui.app is None:
        return
    web_ui.app.register_blueprint(live_blueprint(live_url))
    web_ui.app.after_request(_with_tab_script)
    web_ui.template_args["extended_tabs"] = [{"title": "Live view (doorbuster)", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": []}]
