"""Generated files: Grafana dashboards and provisioning, and the docker-compose stack.

``doorbuster dashboards`` (``make dashboards``) writes them; a test regenerates them and fails
if the committed files differ, so dashboards can not drift from the panel definitions, and
the compose file can not drift from the topology.

Compose runs every service with host networking, so the topology's loopback addresses hold
there unchanged: nothing listens beyond 127.0.0.1, and the apps need no second set of names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from harness.binaries import PROJECT_ROOT
from harness.metrics.panels import DASHBOARDS, PANELS, Panel, panel, panels_for
from harness.metrics.prometheus import scrape_config
from harness.stack.java_brokers import elasticmq_config, kafka_properties
from model.settings import BROKERS, StackSettings
from model.system import SystemSpec
from model.target_config import resolve_target_configs
from model.topology import Topology

__all__ = ["DATASOURCE_UID", "compose_files", "dashboard", "generated_files", "write_generated"]

DATASOURCE_UID = "doorbuster-prometheus"
_DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
RABBITMQ_IMAGE = "rabbitmq:3.13-alpine"
REDIS_IMAGE = "redis:7.0-alpine"
KAFKA_IMAGE = "apache/kafka:4.1.1"
ELASTICMQ_IMAGE = "softwaremill/elasticmq-native:1.6.14"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.4"
GRAFANA_IMAGE = "grafana/grafana:11.6.0"


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": colour, "value": value} for value, colour in panel.thresholds]
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "thresholds": {"mode": "absolute", "steps": steps},
                "custom": {"thresholdsStyle": {"mode": "line" if panel.thresholds else "off"}},
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DATASOURCE, "expr": q.expr, "legendFormat": q.legend}
            for i, q in enumerate(panel.queries)
        ],
    }


def dashboard(key: str) -> dict[str, Any]:
    """One Grafana dashboard, two panels to a row, with every fault window annotated."""
    links = [_link(title, f"/d/doorbuster-{k}") for k, title in DASHBOARDS.items() if k != key]
    panels = [p for p in PANELS if p.dashboard == key]
    return _dashboard(f"doorbuster-{key}", DASHBOARDS[key], panels, links)


def system_dashboard(system: SystemSpec) -> dict[str, Any]:
    """The dashboard of a system of the user's: the panels every stack has data for (the load
    generator's view and the faults); the checkout's own panels would stay empty."""
    panels = list(panels_for(builtin=False))
    return _dashboard(f"doorbuster-system-{system.name}", f"doorbuster: {system.name}", panels, [])


def _link(title: str, url: str) -> dict[str, Any]:
    """A link to another dashboard of the folder, with every field Grafana's schema requires."""
    return {
        "title": title,
        "type": "link",
        "url": url,
        "icon": "dashboard",
        "tooltip": "",
        "tags": [],
        "asDropdown": False,
        "targetBlank": False,
        "includeVars": False,
        "keepTime": True,
    }


def _dashboard(uid: str, title: str, panels: list[Panel], links: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["doorbuster"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "annotations": {
            "list": [
                {
                    "name": "Faults",
                    "datasource": _DATASOURCE,
                    "enable": True,
                    "iconColor": "orange",
                    "expr": f"{panel('faults').queries[0].expr} > 0",
                    "step": "1s",
                    "titleFormat": "fault",
                    "textFormat": "{{lane}}-{{dependency}} {{type}}",
                    "tagKeys": "lane,dependency,type",
                    "useValueForTime": False,
                }
            ]
        },
        "links": links,
        "templating": {"list": []},
        "panels": [_panel_json(p, i + 1, (i % 2) * 12, (i // 2) * 8) for i, p in enumerate(panels)],
    }


def _grafana_files() -> dict[str, str]:
    files = {
        f"grafana/dashboards/{key}.json": json.dumps(dashboard(key), indent=2, sort_keys=True) + "\n"
        for key in DASHBOARDS
    }
    files["grafana/provisioning/datasources/prometheus.yaml"] = _yaml(
        {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "Prometheus",
                    "type": "prometheus",
                    "uid": DATASOURCE_UID,
                    "access": "proxy",
                    # Grafana expands environment variables in provisioning files.
                    "url": "$DOORBUSTER_PROMETHEUS_URL",
                    "isDefault": True,
                    "jsonData": {"timeInterval": "1s"},
                }
            ],
        }
    )
    files["grafana/provisioning/dashboards/doorbuster.yaml"] = _yaml(
        {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "doorbuster",
                    "folder": "doorbuster",
                    "type": "file",
                    "allowUiUpdates": False,
                    "options": {"path": "/var/lib/grafana/dashboards"},
                }
            ],
        }
    )
    return files


def _yaml(data: Any) -> str:
    return "# Generated by `doorbuster dashboards` from harness/; do not edit.\n" + yaml.safe_dump(
        data, sort_keys=False
    )


def _broker_services(topology: Topology) -> dict[str, Any]:
    """One service per broker, each in the profile of its name (they share the broker port)."""
    host, port = topology.host, str(topology.ports["broker"])
    redis = {
        "image": REDIS_IMAGE,
        "network_mode": "host",
        "command": [
            "redis-server",
            "--bind",
            host,
            "--port",
            port,
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "yes",
        ],
    }
    kafka_env = {"CLUSTER_ID": "ZG9vcmJ1c3Rlci1rYWZrYQ"}  # 16 bytes, base64: "doorbuster-kafka"
    for line in kafka_properties(topology, "/var/lib/kafka/data").splitlines():
        if line:
            key, value = line.split("=", 1)
            kafka_env["KAFKA_" + key.upper().replace(".", "_")] = value
    return {
        "broker-rabbitmq": {
            "image": RABBITMQ_IMAGE,
            "network_mode": "host",
            "profiles": ["rabbitmq"],
            "environment": {
                "RABBITMQ_NODE_IP_ADDRESS": host,
                "RABBITMQ_NODE_PORT": port,
                "RABBITMQ_DIST_PORT": str(topology.ports["broker-dist"]),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                "ERL_EPMD_ADDRESS": host,
            },
        },
        "broker-redis-streams": {**redis, "profiles": ["redis-streams"]},
        "broker-redis-pubsub": {**redis, "profiles": ["redis-pubsub"]},
        "broker-kafka": {
            "image": KAFKA_IMAGE,
            "network_mode": "host",
            "profiles": ["kafka"],
            "environment": kafka_env,
        },
        "broker-sqs": {
            "image": ELASTICMQ_IMAGE,
            "network_mode": "host",
            "profiles": ["sqs"],
            "volumes": ["./docker/elasticmq.conf:/opt/elasticmq.conf:ro"],
        },
    }


def compose_files(topology: Topology) -> dict[str, str]:
    """docker-compose.yml and the files it mounts, for the default topology."""
    from harness.metrics.panels import recording_rules

    host = topology.host
    services: dict[str, Any] = {
        "toxiproxy": {
            "image": TOXIPROXY_IMAGE,
            "network_mode": "host",
            "command": [
                "-host",
                host,
                "-port",
                str(topology.toxiproxy.port),
                "-config",
                "/config/toxiproxy.json",
                "-proxy-metrics",
                "-runtime-metrics",
            ],
            "volumes": ["./docker/toxiproxy.json:/config/toxiproxy.json:ro"],
        },
        **_broker_services(topology),
        "prometheus": {
            "image": PROMETHEUS_IMAGE,
            "network_mode": "host",
            "command": [
                "--config.file=/etc/prometheus/prometheus.yml",
                f"--web.listen-address={topology.prometheus.address}",
                "--storage.tsdb.retention.time=7d",
            ],
            "volumes": [
                "./docker/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                "./docker/rules.yml:/etc/prometheus/rules.yml:ro",
            ],
        },
        "grafana": {
            "image": GRAFANA_IMAGE,
            "network_mode": "host",
            "environment": {
                # No default password: compose refuses to start without one.
                "GF_SECURITY_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD}",
                "GF_SERVER_HTTP_ADDR": host,
                "GF_SERVER_HTTP_PORT": "3000",
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
                "DOORBUSTER_PROMETHEUS_URL": topology.prometheus.url,
            },
            "volumes": [
                "./grafana/provisioning:/etc/grafana/provisioning:ro",
                "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
            ],
            "depends_on": ["prometheus"],
        },
    }
    target = {
        "build": {"context": ".", "dockerfile": "Dockerfile"},
        "image": "doorbuster:local",
        "network_mode": "host",
        # The broker is chosen with DOORBUSTER_BROKER and the profile of the same name (.env
        # holds the default); the targets connect to it with back-off, whenever it is up.
        "volumes": [
            "./docker/stack-${DOORBUSTER_BROKER:-rabbitmq}.json:/config/stack.json:ro",
            "./docker/targets-${DOORBUSTER_BROKER:-rabbitmq}.json:/config/targets.json:ro",
        ],
        "depends_on": ["toxiproxy"],
    }
    for spec in topology.processes:
        if spec.kind not in ("order", "downstream", "worker"):
            continue
        command = ["python", "-m", "targets", "--config-file", "/config/targets.json", "--process", spec.name]
        services[spec.name] = {**target, "command": command}
    master_port = str(topology.ports["locust-master"])
    locust_env = {
        "DOORBUSTER_STACK_FILE": "/config/stack.json",
        "DOORBUSTER_SCENARIO": "black-friday",
        # Workers split one arrival schedule by index: set it to the --scale of locust-worker.
        "DOORBUSTER_WORKERS": "${DOORBUSTER_WORKERS:-1}",
    }
    services["locust-master"] = {
        **target,
        "depends_on": ["order-sync", "order-async"],
        "environment": locust_env,
        "command": [
            "locust",
            "-f",
            "locustfiles/black_friday.py",
            "--master",
            "--master-bind-host",
            host,
            "--master-bind-port",
            master_port,
            "--web-host",
            host,
            "--web-port",
            "8089",
        ],
    }
    services["locust-worker"] = {
        **target,
        "depends_on": ["locust-master"],
        "environment": locust_env,
        "command": [
            "locust",
            "-f",
            "locustfiles/black_friday.py",
            "--worker",
            "--master-host",
            host,
            "--master-port",
            master_port,
        ],
    }
    # "version" keeps Debian's docker-compose 1.29 happy; Compose v2 ignores it.
    compose = {"version": "3.8", "services": services}
    prometheus = scrape_config(topology)
    prometheus["rule_files"] = ["/etc/prometheus/rules.yml"]
    proxies = [
        {"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": True}
        for p in topology.proxies
    ]
    stacks: dict[str, str] = {}
    for broker in BROKERS:
        stack = Topology.from_settings(topology.settings.model_copy(update={"broker": broker}))
        stacks[f"docker/stack-{broker}.json"] = stack.to_json() + "\n"
        configs = resolve_target_configs(stack, data_dir=Path("/data"))
        stacks[f"docker/targets-{broker}.json"] = configs.model_dump_json(indent=2) + "\n"
    return {
        "docker-compose.yml": _yaml(compose),
        ".env": "# Generated by `doorbuster dashboards`: the async lane's broker for docker compose.\n"
        "# Another one: DOORBUSTER_BROKER=kafka COMPOSE_PROFILES=kafka docker compose up\n"
        "DOORBUSTER_BROKER=rabbitmq\nCOMPOSE_PROFILES=rabbitmq\n",
        **stacks,
        "docker/elasticmq.conf": elasticmq_config(topology, "/data"),
        "docker/prometheus.yml": _yaml(prometheus),
        "docker/rules.yml": _yaml(recording_rules()),
        "docker/toxiproxy.json": json.dumps(proxies, indent=2) + "\n",
    }


def generated_files() -> dict[str, str]:
    """Every generated file: path relative to the project root -> its exact content."""
    return {**_grafana_files(), **compose_files(Topology.from_settings(StackSettings()))}


def write_generated(root: Path = PROJECT_ROOT) -> list[Path]:
    written = []
    for relative, content in generated_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(path)
    return written
