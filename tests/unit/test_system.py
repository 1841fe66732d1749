"""System files: the format, its checks, and the topology, scenario and faults built on one."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config.scenarios import load_scenario
from harness.config.systems import check_hosts, default_system, for_settings, load_system, shipped_systems
from model import metric_names as names
from model.errors import ConfigError
from model.faults import FaultSpec
from model.settings import PortSettings, StackSettings
from model.system import SystemSpec, expand, placeholders
from model.topology import ProcessSpec, Topology


def shop(**over: Any) -> dict[str, Any]:
    """A user's system: an API (started by doorbuster) on a database, one sync lane."""
    data: dict[str, Any] = {
        "name": "shop",
        "services": [
            {"name": "db", "command": ["/usr/bin/db-server", "--port", "{port:db}", "--dir", "{state}/db"]},
            {
                "name": "api",
                "command": ["{python}", "-m", "shop", "--port", "{port:api}"],
                "env": {"DATABASE_URL": "postgres://app@{proxy:db}/app"},
                "setup": [["{python}", "-m", "shop.migrate"]],
                "health": "/healthz",
                "metrics": "/metrics",
            },
        ],
        "dependencies": [{"name": "db", "lane": "sync", "upstream": "{service:db}"}],
        "lanes": {
            "sync": {
                "method": "POST",
                "url": "http://{service:api}/orders?source=doorbuster",
                "headers": {"Content-Type": "application/json"},
                "body": '{"id": "{request_id}", "items": [{"sku": "{sku}", "qty": {qty}}]}',
                "id_field": "id",
            }
        },
    }
    data.update(over)
    return data


def topology_of(spec: SystemSpec) -> Topology:
    return Topology.from_settings(StackSettings(system=spec))


def test_placeholders_leave_json_braces_alone() -> None:
    body = '{"id": "{request_id}", "items": [{"sku": "{sku}", "qty": {qty}}]}'
    assert placeholders(body) == [("request_id", None), ("sku", None), ("qty", None)]
    assert expand(body, {"request_id": "r1", "sku": "tv", "qty": "2"}) == (
        '{"id": "r1", "items": [{"sku": "tv", "qty": 2}]}'
    )


def test_a_system_gets_its_ports_proxies_and_processes_from_the_layout() -> None:
    topo = topology_of(SystemSpec.model_validate(shop()))
    assert topo.lanes == ("sync",)
    assert not topo.builtin and not topo.has_broker
    assert topo.ports["service-db"] == 21300 and topo.ports["service-api"] == 21301
    (proxy,) = topo.proxies
    assert (proxy.name, proxy.listen, proxy.upstream) == ("sync-db", "127.0.0.1:21100", "127.0.0.1:21300")
    assert [p.name for p in topo.processes] == ["toxiproxy", "prometheus", "db", "api", "live"]
    api = topo.process("api")
    assert (api.kind, api.health_path, api.metrics_path, api.http_health) == (
        "service",
        "/healthz",
        "/metrics",
        True,
    )
    assert topo.process("db").metrics_path is None and not topo.process("db").http_health
    assert topo.lane_url("sync") == "http://127.0.0.1:21301/orders?source=doorbuster"
    assert topo.order_service("sync").address == "127.0.0.1:21301"
    values = topo.address_values()
    assert values["proxy:db"] == values["proxy:sync-db"] == "127.0.0.1:21100"
    with pytest.raises(ConfigError, match=r"has no async lane"):
        topo.order_service("async")


def test_a_service_the_user_runs_is_watched_not_started_and_takes_no_port() -> None:
    data = shop()
    data["services"][0] = {"name": "db", "url": "http://127.0.0.1:5999"}
    topo = topology_of(SystemSpec.model_validate(data))
    assert "service-db" not in topo.ports
    assert topo.process("db").kind == "external"
    assert topo.proxies[0].upstream == "127.0.0.1:5999"


def test_the_builtin_checkout_file_keeps_todays_topology() -> None:
    spec = default_system()
    assert spec.builtin == "checkout" and spec.ledger
    assert for_settings("checkout") is None  # the same stack, named or not
    builtin = Topology.from_settings(StackSettings(system=spec))
    default = Topology.from_settings(StackSettings())
    assert builtin.ports == default.ports and builtin.proxies == default.proxies
    assert builtin.lane_url("async") == default.lane_url("async") == "http://127.0.0.1:21001/orders"
    assert "checkout" in shipped_systems()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"services": []}, "services: at least one"),
        ({"lanes": {}}, "lanes"),
        ({"ledger": True}, "only the builtin checkout keeps an order ledger"),
        ({"services": [{"name": "db", "command": "db-server --port 1"}]}, "services.0.command"),
        ({"services": [{"name": "db", "command": ["x"], "url": "http://127.0.0.1:1"}]}, "either command"),
        ({"services": [{"name": "db", "url": "ftp://127.0.0.1:1"}]}, "http\\(s\\)://host:port"),
        ({"services": [{"name": "Db", "command": ["x"]}]}, "services.0.name"),
        (
            {"services": [{"name": "db", "command": ["x"], "health": "healthz"}]},
            "health is tcp or an HTTP path",
        ),
        ({"dependencies": [{"name": "db", "upstream": "nowhere"}]}, "expected host:port"),
        ({"dependencies": [{"name": "db", "upstream": "{service:cache}"}]}, "no service is named 'cache'"),
        ({"dependencies": [{"name": "db", "lane": "both", "upstream": "127.0.0.1:5432"}]}, "lane"),
        (
            {"lanes": {"sync": {"url": "http://{service:api}/o", "body": "{order}"}}},
            "lanes.sync.body: \\{order\\}",
        ),
        ({"lanes": {"sync": {"url": "http://{proxy:db}/o"}}}, "lanes.sync.url: \\{proxy\\}"),
        ({"lanes": {"sync": {"url": "{service:api}/o"}}}, "expected an http\\(s\\) URL"),
        ({"lanes": {"sync": {"url": "http://{service:api}/o", "follow": {"location": "body"}}}}, "location"),
        ({"lanes": {"batch": {"url": "http://{service:api}/o"}}}, "lanes.batch"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_system_files_are_refused_naming_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(shop(**change)))
    with pytest.raises(ConfigError, match=message) as info:
        load_system(str(path))
    assert str(path) in str(info.value)


def test_a_placeholder_naming_an_unknown_service_or_proxy_is_refused() -> None:
    data = shop()
    data["services"][1]["env"] = {"CACHE": "{proxy:cache}"}
    with pytest.raises(ValueError, match=r"services.api.env.CACHE: \{proxy:cache\}: no dependency"):
        SystemSpec.model_validate(data)
    data = shop()
    data["services"][1]["command"] = ["run", "--port", "{port:web}"]
    with pytest.raises(ValueError, match=r"\{port:web\}: no service doorbuster starts"):
        SystemSpec.model_validate(data)


def test_no_system_file_and_not_a_mapping_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no system 'nosuch'; shipped: .*checkout"):
        load_system("nosuch")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"expected a mapping"):
        load_system(str(path))


def test_hosts_off_loopback_need_allowing() -> None:
    data = shop()
    data["dependencies"] = [{"name": "db", "upstream": "db.example.com:5432"}]
    spec = SystemSpec.model_validate(data)
    with pytest.raises(ConfigError, match=r"db.example.com, off this machine.*--allow-host db.example.com"):
        check_hosts(spec)
    check_hosts(spec, ("db.example.com",))
    check_hosts(SystemSpec.model_validate(shop()))  # placeholders resolve to loopback


def _scenario(tmp_path: Path, **over: Any) -> Path:
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(shop()))
    data: dict[str, Any] = {
        "name": "shop-db",
        "system": "shop.yaml",
        "load": {"stages": [{"name": "baseline", "duration": "30s", "rate": 2}]},
        "chaos": [{"name": "db-slow", "at": "10s", "for": "10s", "dependency": "db", "type": "latency",
                   "attributes": {"latency": 300}}],
        "expectations": ["sync.checkout.p50 < 2s at baseline"],
    }  # fmt: skip
    data.update(over)
    path = tmp_path / "shop-db.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_scenario_names_its_system_and_drives_only_its_lanes(tmp_path: Path) -> None:
    scenario, _ = load_scenario(str(_scenario(tmp_path)))
    assert scenario.stack.system is not None and scenario.stack.system.name == "shop"
    assert scenario.load.lanes == ("sync",)
    assert not scenario.stack.keeps_ledger


def test_a_scenario_on_a_system_without_a_ledger_can_not_expect_ledger_verdicts(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"'no lost orders'.*needs an order ledger, and system shop keeps none"
    ):
        load_scenario(str(_scenario(tmp_path, expectations=["no lost orders"])))


def test_a_scenario_can_not_load_a_lane_its_system_lacks(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path, load={"lanes": ["sync", "async"], "stages": [{"name": "b", "duration": "30s", "rate": 1}]}
    )
    with pytest.raises(ConfigError, match=r"load.lanes: the system has no async lane"):
        load_scenario(str(path))


def test_system_option_overrides_the_scenario_file(tmp_path: Path) -> None:
    other = tmp_path / "shop2.yaml"
    other.write_text(yaml.safe_dump(shop(name="shop2")))
    scenario, _ = load_scenario(str(_scenario(tmp_path)), system=str(other))
    assert scenario.stack.system is not None and scenario.stack.system.name == "shop2"


def test_a_scenario_whose_faults_name_hops_the_system_lacks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(shop()))
    with pytest.raises(
        ConfigError,
        match=r"black-friday.yaml: chaos.0 \(email-slow\): lane 'sync' has no dependency 'email'; it has db",
    ):
        load_scenario("black-friday", system=str(tmp_path / "shop.yaml"))


def test_faults_on_a_system_go_to_the_lanes_that_have_the_hop_and_http_faults_are_refused() -> None:
    topo = topology_of(SystemSpec.model_validate(shop()))
    spec = FaultSpec(dependency="db", type="latency", attributes={"latency": 300})
    assert spec.validate(topo) is not None
    assert topo.lanes_with("db", ("sync", "async")) == ("sync",)
    with pytest.raises(ConfigError, match=r"lane 'async' has no dependency 'db'"):
        FaultSpec(dependency="db", type="latency", lanes=("async",), attributes={"latency": 1}).validate(topo)
    with pytest.raises(ConfigError, match=r"HTTP fault.*db is a TCP hop"):
        FaultSpec(dependency="db", type="http_error", attributes={"rate": 0.5}).validate(topo)


def test_prometheus_scrapes_a_system_service_at_its_own_metrics_path() -> None:
    from harness.metrics.prometheus import scrape_config

    config = scrape_config(topology_of(SystemSpec.model_validate(shop(name="shop"))))
    targets = {t["labels"]["process"]: t for job in config["scrape_configs"] for t in job["static_configs"]}
    assert targets["api"]["targets"] == ["127.0.0.1:21301"]
    assert "__metrics_path__" not in targets["api"]["labels"]  # the default, /metrics
    assert "db" not in targets  # no metrics path: not scraped
    data = shop()
    data["services"][1]["metrics"] = "/v1/__metrics__"
    config = scrape_config(topology_of(SystemSpec.model_validate(data)))
    targets = {t["labels"]["process"]: t for job in config["scrape_configs"] for t in job["static_configs"]}
    assert targets["api"]["labels"]["__metrics_path__"] == "/v1/__metrics__"


def test_a_program_the_system_names_must_exist_before_anything_starts(tmp_path: Path) -> None:
    from harness.stack.state import StateDir
    from harness.stack.system_commands import check_programs, start_command
    from model.errors import MissingBinary

    topo = topology_of(SystemSpec.model_validate(shop()))
    state = StateDir(tmp_path)
    with pytest.raises(
        MissingBinary, match=r"service db runs /usr/bin/db-server, which is not an executable"
    ):
        check_programs(topo, state)
    data = shop()
    data["services"][0]["command"] = ["{python}", "-c", "pass", "{port:db}"]
    topo = topology_of(SystemSpec.model_validate(data))
    check_programs(topo, state)  # {python} and the api's own {python} steps resolve
    cmd, env = start_command(topo.system.services[1], topo, state)  # type: ignore[union-attr]
    assert cmd[-1] == "21301" and env == {"DATABASE_URL": "postgres://app@127.0.0.1:21100/app"}


def test_a_systems_dashboard_and_report_hold_only_panels_every_stack_has_data_for(tmp_path: Path) -> None:
    import json

    from harness.cli.main import main
    from harness.metrics.panels import PANELS, panels_for
    from harness.stack.generated import system_dashboard

    universal = panels_for(builtin=False)
    assert {p.key for p in universal} == {
        "faults", "client_latency", "arrivals", "users",
        "generator_send_lag", "generator_loop_lag", "generator_cpu", "generator_unsent",
    }  # fmt: skip
    # what they query comes from the load generator and the supervisor, which every stack runs
    generator = (names.GENERATOR_SEND_LAG, names.GENERATOR_EVENT_LOOP_LAG, names.GENERATOR_CPU_SHARE,
                 names.GENERATOR_ARRIVALS_DUE, names.GENERATOR_ARRIVALS_NEVER_SENT)  # fmt: skip
    for p in universal:
        for q in p.queries:
            from_generator = "locust" in q.expr or any(name in q.expr for name in generator)
            assert from_generator or names.TOXIC_ACTIVE in q.expr, (p.key, q.expr)
    assert panels_for(builtin=True) == PANELS
    board = system_dashboard(load_system("kinto"))
    assert board["uid"] == "doorbuster-system-kinto"
    assert [p["title"] for p in board["panels"]] == [p.title for p in universal]
    out = tmp_path / "kinto.json"
    assert main(["dashboards", "--system", "kinto", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == board
    assert main(["dashboards", "--system", "checkout"]) == 2


def test_a_sweeps_clean_check_on_a_system_reads_no_ledger_and_no_checkout_gauges() -> None:
    from harness.sweep.clean import stack_dirt

    asked: list[str] = []

    def fetch(url: str, **params: Any) -> Any:
        asked.append(url)
        raise AssertionError(f"no process of this system has doorbuster's gauges or ledger: {url}")

    def read_metrics(spec: ProcessSpec) -> Any:
        asked.append(spec.name)
        raise AssertionError(f"no process of this system has doorbuster's gauges: {spec.name}")

    # Ports bound here and never listened on refuse every connection: each process is named as
    # not answering, whatever else runs on this machine, and nothing else is asked.
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        for port in range(27700, 27800):  # outside the ephemeral range, as the topology asks
            sock = held.enter_context(socket.socket())
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
            if len(ports) == 3:
                break
        overrides = {"service-db": ports[0], "service-api": ports[1]}
        settings = StackSettings(
            system=SystemSpec.model_validate(shop()),
            ports=PortSettings(base=27000, toxiproxy_api=ports[2], overrides=overrides),
        )
        reasons = stack_dirt(
            Topology.from_settings(settings), since=0.0, fetch=fetch, read_metrics=read_metrics
        )
    assert asked == []
    assert {"db: not answering", "api: not answering"} <= set(reasons)
