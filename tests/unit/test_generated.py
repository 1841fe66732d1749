"""Generated files can not drift: from the panels (Grafana) and the topology (compose)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.binaries import PROJECT_ROOT
from harness.metrics.panels import ATTEMPTS_PER_ORDER, DASHBOARDS, PANELS, RECORDING_RULES
from harness.metrics.prometheus import write_prometheus_config
from harness.stack.generated import generated_files
from harness.stack.state import StateDir
from model import metric_names as names
from model.settings import BROKERS, StackSettings
from model.target_config import TargetConfigs, resolve_target_config
from model.topology import Topology

TOPOLOGY = Topology.from_settings(StackSettings())


def test_committed_files_are_exactly_what_the_generator_writes() -> None:
    stale = [
        path
        for path, content in generated_files().items()
        if not (PROJECT_ROOT / path).exists() or (PROJECT_ROOT / path).read_text() != content
    ]
    assert not stale, f"regenerate with `make dashboards`: {stale}"


def test_every_panel_is_on_exactly_one_dashboard_with_its_queries() -> None:
    files = generated_files()
    seen: dict[str, int] = {}
    for key in DASHBOARDS:
        board = json.loads(files[f"grafana/dashboards/{key}.json"])
        assert board["uid"] == f"doorbuster-{key}"
        assert names.TOXIC_ACTIVE in board["annotations"]["list"][0]["expr"]
        for panel in board["panels"]:
            seen[panel["title"]] = seen.get(panel["title"], 0) + 1
            assert panel["targets"], panel["title"]
    assert seen == {p.title: 1 for p in PANELS}
    exprs = {t["expr"] for key in DASHBOARDS for p in json.loads(files[f"grafana/dashboards/{key}.json"])["panels"]
             for t in p["targets"]}  # fmt: skip
    assert exprs == {q.expr for p in PANELS for q in p.queries}


def test_compose_agrees_with_the_topology() -> None:
    compose = yaml.safe_load(generated_files()["docker-compose.yml"])
    services = compose["services"]
    targets = {s.name for s in TOPOLOGY.processes if s.kind in ("order", "downstream", "worker")}
    assert targets <= set(services)
    assert {"toxiproxy", "prometheus", "grafana", "locust-master", "locust-worker"} <= set(services)
    assert {f"broker-{b}" for b in BROKERS} <= set(services)  # one per broker, each in its profile
    for broker in BROKERS:
        assert services[f"broker-{broker}"]["profiles"] == [broker]
        stack = Topology.from_json(generated_files()[f"docker/stack-{broker}.json"])
        assert stack.settings.broker == broker and stack.ports == TOPOLOGY.ports
    for name, service in services.items():
        assert service["network_mode"] == "host", name  # so the topology's loopback addresses hold
        assert "ports" not in service, name
    for broker in BROKERS:  # each target's resolved configuration, for each broker's profile
        configs = TargetConfigs.model_validate_json(generated_files()[f"docker/targets-{broker}.json"]).root
        topology = Topology.from_settings(TOPOLOGY.settings.model_copy(update={"broker": broker}))
        assert set(configs) == targets
        for name, config in configs.items():
            assert config == resolve_target_config(topology, topology.process(name), data_dir=Path("/data"))
    for spec in TOPOLOGY.processes:
        if spec.name in targets:
            command = services[spec.name]["command"]
            assert command[command.index("--process") + 1] == spec.name
    toxiproxy = services["toxiproxy"]["command"]
    assert toxiproxy[toxiproxy.index("-host") + 1] == "127.0.0.1"
    assert toxiproxy[toxiproxy.index("-port") + 1] == str(TOPOLOGY.toxiproxy.port)
    assert f"--web.listen-address={TOPOLOGY.prometheus.address}" in services["prometheus"]["command"]
    assert services["broker-rabbitmq"]["environment"]["RABBITMQ_NODE_PORT"] == str(TOPOLOGY.broker.port)
    kafka = services["broker-kafka"]["environment"]
    assert kafka["KAFKA_ADVERTISED_LISTENERS"].startswith(
        f"PROXIED://{TOPOLOGY.proxy('async', 'broker').listen}"
    )
    assert services["grafana"]["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    proxies = json.loads(generated_files()["docker/toxiproxy.json"])
    assert {(p["name"], p["listen"], p["upstream"]) for p in proxies} == {
        (p.name, p.listen, p.upstream) for p in TOPOLOGY.proxies
    }
    assert Topology.from_json(generated_files()["docker/stack-rabbitmq.json"]) == TOPOLOGY


def test_grafana_has_no_default_password() -> None:
    password = yaml.safe_load(generated_files()["docker-compose.yml"])["services"]["grafana"]["environment"][
        "GF_SECURITY_ADMIN_PASSWORD"
    ]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?")


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is installed by scripts/setup"
    return subprocess.run(
        [binary, "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=PROJECT_ROOT, timeout=60,
    )  # fmt: skip


def test_docker_compose_validates_and_insists_on_a_password() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    ok = _compose({**env, "GRAFANA_ADMIN_PASSWORD": "s3cret"})
    assert ok.returncode == 0, ok.stderr
    for broker in BROKERS:  # each broker's profile, with its stack file
        chosen = _compose({**env, "GRAFANA_ADMIN_PASSWORD": "s3cret", "DOORBUSTER_BROKER": broker,
                           "COMPOSE_PROFILES": broker})  # fmt: skip
        assert chosen.returncode == 0, (broker, chosen.stderr)
    os.environ.pop("GRAFANA_ADMIN_PASSWORD", None)
    refused = _compose({})
    assert refused.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in refused.stderr


@pytest.fixture
def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool comes with Prometheus, installed by scripts/setup"
    return binary


def test_promtool_accepts_the_generated_config_and_rules(tmp_path: Path, promtool: str) -> None:
    state = StateDir(tmp_path)
    config = write_prometheus_config(TOPOLOGY, state.root)
    for args in (["check", "config", str(config)], ["check", "rules", str(tmp_path / "rules.yml")],
                 ["check", "rules", str(PROJECT_ROOT / "docker" / "rules.yml")]):  # fmt: skip
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((tmp_path / "rules.yml").read_text())["groups"][0]["rules"]
    assert {r["record"] for r in rules} == set(RECORDING_RULES)


def test_attempts_per_order_has_no_sample_while_the_workers_drain_without_orders(
    tmp_path: Path, promtool: str
) -> None:
    """Evaluated by Prometheus' own rule engine (promtool test rules) on the generated rules: a
    lane whose workers still call downstream after its orders stopped has no ratio, not +Inf."""
    # 1 s apart: orders stop at 60 s while downstream calls go on, as in a backlog's drain.
    orders = "0+10x60 600+0x60"
    attempts = "0+50x120"
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1s",
        "tests": [{
            "interval": "1s",
            "input_series": [
                {"series": f'{names.ORDER_REQUESTS}{{lane="async", method="POST", code="202"}}', "values": orders},
                {"series": f'{names.DOWNSTREAM_CALL_ATTEMPTS}{{lane="async", dependency="email"}}', "values": attempts},
            ],
            "promql_expr_test": [
                {"expr": ATTEMPTS_PER_ORDER, "eval_time": "30s",
                 "exp_samples": [{"labels": f'{ATTEMPTS_PER_ORDER}{{lane="async"}}', "value": 5}]},
                {"expr": ATTEMPTS_PER_ORDER, "eval_time": "100s", "exp_samples": []},
            ],
        }],
    }  # fmt: skip
    write_prometheus_config(TOPOLOGY, tmp_path)
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_process_with_metrics_is_scraped() -> None:
    from harness.metrics.prometheus import scrape_config

    config = scrape_config(TOPOLOGY)
    addresses = {t["targets"][0] for job in config["scrape_configs"] for t in job["static_configs"]}
    for spec in TOPOLOGY.processes:
        if spec.metrics_path:
            assert spec.endpoint.address in addresses, spec.name
    assert TOPOLOGY.endpoint("locust-exporter").address in addresses
    assert TOPOLOGY.endpoint("supervisor").address in addresses
    assert config["global"]["scrape_interval"] == "1s"
