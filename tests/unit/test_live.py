"""The live server's endpoints, with a fake Prometheus and a fake fault desk passed in: bad
input gets a 400 that says what is wrong, a request from another origin (or without the page's
token) a 403 and changes nothing, and only the catalogue's queries reach Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harness.live.app import TOKEN_HEADER, LiveView, build_live_app
from harness.live.series import fault_windows, layout_of
from harness.metrics.panels import PANELS, panel, panels_for
from harness.run.status import RunStatus, VerdictLine
from model.faults import FaultSpec
from model.settings import StackSettings
from model.system import SystemSpec
from model.topology import Topology

TOKEN = "t0ken-of-this-stack"
NOW = 1_800_000_000.0
TOPOLOGY = Topology.from_settings(StackSettings())
OWN = f"http://127.0.0.1:{TOPOLOGY.ports['live']}"
HOST = OWN.removeprefix("http://")


class FakePrometheus:
    """Answers every range query with one series per lane; records what it was asked."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        self.queries.append(query)
        return [
            {"metric": {"lane": lane, "dependency": "payment", "type": "latency"},
             "values": [[start + step, "0.5"], [end, "1"]]}
            for lane in ("sync", "async")
        ]  # fmt: skip


class FakeFaults:
    def __init__(self) -> None:
        self.added: list[FaultSpec] = []
        self.removed: list[tuple[str, tuple[str, ...], str | None]] = []

    def active(self) -> list[dict[str, Any]]:
        return [
            {"lane": "sync", "dependency": "payment", "type": "latency", "name": "slow", "attributes": {}}
        ]

    def add(self, spec: FaultSpec) -> list[dict[str, Any]]:
        self.added.append(spec)
        return [{"lane": lane, "dependency": spec.dependency, "type": spec.type} for lane in spec.lanes]

    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None) -> int:
        self.removed.append((dependency, lanes, name))
        return len(lanes)


RUN = RunStatus(
    scenario="black_friday", run_dir="/tmp/run", pid=1, stage="done",
    verdicts=(VerdictLine(expectation="async p99 < 1s", outcome="pass", observed="0.2s"),), outcome="pass",
)  # fmt: skip


def _view(
    prometheus: FakePrometheus,
    faults: FakeFaults,
    *,
    topology: Topology = TOPOLOGY,
    uplot: Path | None = None,
) -> LiveView:
    return LiveView(
        topology=topology, token=TOKEN, series=prometheus, faults=faults, run_status=lambda: RUN,
        uplot_dir=uplot or Path("/nonexistent"), clock=lambda: NOW,
    )  # fmt: skip


@pytest.fixture
async def client_and_fakes() -> Any:
    prometheus, faults = FakePrometheus(), FakeFaults()
    async with TestClient(TestServer(build_live_app(_view(prometheus, faults)))) as client:
        yield client, prometheus, faults


def _page_headers(**extra: str) -> dict[str, str]:
    return {"Host": HOST, "Origin": OWN, "Sec-Fetch-Site": "same-origin", TOKEN_HEADER: TOKEN, **extra}


LATENCY = {"dependency": "payment", "type": "latency", "lane": "sync", "attributes": {"latency": 800}}


async def test_the_page_embeds_the_token_and_the_config_lists_the_catalogues_panels(
    client_and_fakes: Any,
) -> None:
    client, _, _ = client_and_fakes
    page = await client.get("/", headers={"Host": HOST})
    assert page.status == 200 and f'data-token="{TOKEN}"' in await page.text()
    config = await (await client.get("/api/config", headers={"Host": HOST})).json()
    assert [p["key"] for p in config["panels"]] == [p.key for p in PANELS]
    assert config["lanes"] == ["sync", "async"] and "broker" in config["dependencies"]["async"]


async def test_a_system_of_the_users_gets_only_its_panels() -> None:
    system = SystemSpec.model_validate(
        {"name": "shop", "lanes": {"sync": {"url": "http://{service:api}/buy"}},
         "services": [{"name": "api", "command": ["api"], "port": 21301}], "dependencies": []}
    )  # fmt: skip
    topology = Topology.from_settings(StackSettings(system=system))
    view = _view(FakePrometheus(), FakeFaults(), topology=topology)
    async with TestClient(TestServer(build_live_app(view))) as client:
        config = await (await client.get("/api/config", headers={"Host": HOST})).json()
        refused = await client.get("/api/series?panel=pool&range=60", headers={"Host": HOST})
        assert refused.status == 400 and "no panel 'pool'" in (await refused.json())["error"]
    assert [p["key"] for p in config["panels"]] == [p.key for p in panels_for(False)]
    assert config["lanes"] == ["sync"]


async def test_series_run_the_catalogues_queries_only_on_one_time_axis(client_and_fakes: Any) -> None:
    client, prometheus, _ = client_and_fakes
    answer = await client.get("/api/series?panel=latency&range=60", headers={"Host": HOST})
    data = await answer.json()
    assert prometheus.queries == [q.expr for q in panel("latency").queries]
    assert len(data["times"]) == 61 and data["times"][-1] == NOW
    first = data["series"][0]
    assert first["lane"] == "sync" and first["label"] == "sync p50"
    assert first["points"] == 2 and first["values"][1] == 0.5 and first["values"][-1] == 1.0
    assert all(len(s["values"]) == len(data["times"]) for s in data["series"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("panel=up&range=60", "no panel 'up'"),
        ("range=60", "no panel ''"),
        ("panel=latency&range=abc", "range: expected seconds"),
        ("panel=latency&range=5", "range: from 10 to 3600"),
        ("panel=latency&range=99999", "range: from 10 to 3600"),
    ],
)
async def test_bad_series_requests_get_400_with_a_message(
    client_and_fakes: Any, query: str, message: str
) -> None:
    client, prometheus, _ = client_and_fakes
    answer = await client.get(f"/api/series?{query}", headers={"Host": HOST})
    assert answer.status == 400 and message in (await answer.json())["error"]
    assert prometheus.queries == []


async def test_fault_windows_come_from_the_catalogues_faults_panel(client_and_fakes: Any) -> None:
    client, prometheus, _ = client_and_fakes
    data = await (await client.get("/api/fault-windows?range=60", headers={"Host": HOST})).json()
    assert prometheus.queries == [q.expr for q in panel("faults").queries]
    # The fake has the fault at the second step and the last: two windows, a gap between.
    assert data["windows"]["sync"] == [[NOW - 59, NOW - 58], [NOW, NOW]]


def test_fault_windows_open_and_close_with_the_series() -> None:
    series = [{"lane": "async", "values": [None, 1.0, 1.0, 0.0, 2.0]}]
    assert fault_windows([0.0, 1.0, 2.0, 3.0, 4.0], series) == {"async": [(1.0, 3.0), (4.0, 4.0)]}


def test_lanes_side_by_side_where_the_legend_names_the_lane() -> None:
    assert layout_of(panel("latency")).split
    assert (layout_of(panel("pool")).split, layout_of(panel("pool")).lane) == (False, "sync")
    assert (layout_of(panel("backlog")).split, layout_of(panel("backlog")).lane) == (False, "async")


async def test_the_page_adds_and_removes_a_fault_through_the_fault_desk(client_and_fakes: Any) -> None:
    client, _, faults = client_and_fakes
    added = await client.post("/api/faults", json=LATENCY, headers=_page_headers())
    assert added.status == 200, await added.text()
    (spec,) = faults.added
    assert (spec.dependency, spec.type, spec.lanes, spec.attributes) == (
        "payment",
        "latency",
        ("sync",),
        {"latency": 800},
    )
    removed = await client.post("/api/faults/remove", json={"dependency": "payment"}, headers=_page_headers())
    assert removed.status == 200 and (await removed.json())["removed"] == 2
    assert faults.removed == [("payment", ("sync", "async"), None)]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:8089"},  # another loopback server (Locust's UI) is another origin
        {"Sec-Fetch-Site": "cross-site", "Origin": OWN},
        {"Sec-Fetch-Site": "same-site"},
        {TOKEN_HEADER: "wrong"},
        {TOKEN_HEADER: ""},
        {"Origin": "", "Sec-Fetch-Site": ""},
    ],
    ids=["other-site", "other-port", "cross-site", "same-site", "wrong-token", "no-token", "no-origin"],
)
async def test_a_state_change_from_elsewhere_is_refused_403(
    client_and_fakes: Any, headers: dict[str, str]
) -> None:
    client, _, faults = client_and_fakes
    sent = _page_headers(**headers)
    sent = {k: v for k, v in sent.items() if v != "" or k == TOKEN_HEADER}
    for path, body in (("/api/faults", LATENCY), ("/api/faults/remove", {"dependency": "payment"})):
        answer = await client.post(path, json=body, headers=sent)
        assert answer.status == 403 and "refused" in (await answer.json())["error"]
    assert faults.added == [] and faults.removed == []


async def test_a_request_naming_another_host_is_refused(client_and_fakes: Any) -> None:
    """A name an attacker's DNS points at 127.0.0.1 does not reach the page (DNS rebinding)."""
    client, _, faults = client_and_fakes
    page = await client.get("/", headers={"Host": f"evil.example:{TOPOLOGY.ports['live']}"})
    posted = await client.post("/api/faults", json=LATENCY, headers=_page_headers(Host="evil.example"))
    assert page.status == 403 and posted.status == 403 and faults.added == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "body is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "latency"}', "dependency: required"),
        ('{"dependency": "payment", "type": "latncy"}', "unknown fault type 'latncy'"),
        ('{"dependency": "paymnt", "type": "latency", "attributes": {"latency": 1}}', "no dependency 'paymnt'"),
        ('{"dependency": "payment", "type": "latency", "attributes": {"latency": "x"}}', "attributes.latency: expected a finite number"),
        ('{"dependency": "payment", "type": "latency", "attributes": {"latency": true}}', "attributes.latency: expected a finite number"),
        ('{"dependency": "payment", "type": "latency", "attributes": {}}', "missing attribute(s) latency"),
        ('{"dependency": "payment", "type": "latency", "attributes": [1]}', "attributes: expected an object"),
        ('{"dependency": "payment", "type": "latency", "lane": "left", "attributes": {"latency": 1}}', "lane: expected sync, async or both"),
        ('{"dependency": "payment", "type": "latency", "toxicity": 2, "attributes": {"latency": 1}}', "toxicity must be from 0 to 1"),
        ('{"dependency": "payment", "type": "latency", "colour": "red"}', "unknown field(s) colour"),
    ],
)  # fmt: skip
async def test_a_bad_fault_gets_400_that_says_what_is_wrong(
    client_and_fakes: Any, body: str, message: str
) -> None:
    client, _, faults = client_and_fakes
    answer = await client.post("/api/faults", data=body, headers=_page_headers())
    assert answer.status == 400
    error = (await answer.json())["error"]
    assert message in error and "Traceback" not in error
    assert faults.added == []


async def test_a_bad_removal_gets_400(client_and_fakes: Any) -> None:
    client, _, faults = client_and_fakes
    answer = await client.post("/api/faults/remove", json={"dependency": "nowhere"}, headers=_page_headers())
    assert answer.status == 400 and "no dependency 'nowhere'" in (await answer.json())["error"]
    assert faults.removed == []


async def test_state_lists_the_faults_and_the_runs_verdicts(client_and_fakes: Any) -> None:
    client, _, _ = client_and_fakes
    state = await (await client.get("/api/state", headers={"Host": HOST})).json()
    assert state["faults"][0]["name"] == "slow"
    assert state["run"]["stage"] == "done" and state["run"]["verdicts"][0]["outcome"] == "pass"


async def test_uplot_is_served_from_the_npm_install_and_nothing_else_is(tmp_path: Path) -> None:
    (tmp_path / "uPlot.iife.min.js").write_text("var uPlot = 1;")
    view = _view(FakePrometheus(), FakeFaults(), uplot=tmp_path)
    async with TestClient(TestServer(build_live_app(view))) as client:
        script = await client.get("/assets/uPlot.iife.min.js", headers={"Host": HOST})
        missing = await client.get("/assets/uPlot.min.css", headers={"Host": HOST})
        other = await client.get("/assets/..%2Fpanels.py", headers={"Host": HOST})
        page_js = await client.get("/assets/live.js", headers={"Host": HOST})
        assert script.status == 200 and await script.text() == "var uPlot = 1;"
        assert missing.status == 404 and "make setup" in (await missing.json())["error"]
        assert other.status == 404
        assert page_js.status == 200 and "data-points" in await page_js.text()
