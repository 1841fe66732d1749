"""The live view's tab in Locust's web UI: a fault change from another origin is refused there,
before anything is passed on; one from Locust's own page is passed on to the live server."""

from __future__ import annotations

import importlib.util
import socket
from types import ModuleType

import pytest
from flask import Flask

from harness.binaries import PROJECT_ROOT


def _live_tab() -> ModuleType:
    """``locustfiles/live_tab.py`` as Locust loads it: a module beside the locustfile."""
    spec = importlib.util.spec_from_file_location("live_tab", PROJECT_ROOT / "locustfiles" / "live_tab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


@pytest.fixture
def locust_ui() -> Flask:
    app = Flask(__name__)
    app.register_blueprint(_live_tab().live_blueprint(f"http://127.0.0.1:{_closed_port()}"))
    return app


BODY = {"dependency": "payment", "type": "latency", "attributes": {"latency": 100}}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:21092"},  # even the live server's own origin is not Locust's
        {"Sec-Fetch-Site": "cross-site"},
        {},
    ],
    ids=["other-site", "other-port", "cross-site", "no-origin"],
)
def test_a_fault_change_from_another_origin_is_refused_before_it_is_passed_on(
    locust_ui: Flask, headers: dict[str, str]
) -> None:
    answer = locust_ui.test_client().post("/doorbuster-live/api/faults", json=BODY, headers=headers)
    assert answer.status_code == 403 and "refused" in answer.get_json()["error"]


def test_a_change_from_locusts_own_page_is_passed_on_and_a_live_server_that_is_down_says_so(
    locust_ui: Flask,
) -> None:
    client = locust_ui.test_client()
    own = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin", "X-Doorbuster-Token": "t"}
    answer = client.post("/doorbuster-live/api/faults/remove", json={"dependency": "payment"}, headers=own)
    assert answer.status_code == 502 and "did not answer" in answer.get_json()["error"]
    page = client.get("/doorbuster-live/")
    assert page.status_code == 502 and "is the stack up?" in page.get_json()["error"]


def test_only_the_fault_endpoints_take_a_post(locust_ui: Flask) -> None:
    answer = locust_ui.test_client().post(
        "/doorbuster-live/api/series", json={}, headers={"Origin": "http://localhost"}
    )
    assert answer.status_code == 404
