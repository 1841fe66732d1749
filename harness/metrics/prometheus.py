"""Prometheus for a stack: its scrape configuration, derived from the topology, and queries.

Every process with metrics is a scrape target, labelled with its lane, dependency and process
name; so are Toxiproxy's own ``/metrics`` and the Locust exporter (which answers only while a
run is going).  A 1 s scrape interval gives a five-minute run its resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml

from model.errors import EnvironmentProblem
from model.topology import Topology

__all__ = ["PrometheusClient", "scrape_config", "write_prometheus_config"]

SCRAPE_INTERVAL = "1s"


def scrape_config(topology: Topology) -> dict[str, Any]:
    targets = []
    for spec in topology.processes:
        if spec.metrics_path is None:
            continue
        labels = {"process": spec.name, "kind": spec.kind}
        if spec.lane:
            labels["lane"] = spec.lane
        if spec.dependency:
            labels["dependency"] = spec.dependency
        if spec.metrics_path != "/metrics":
            labels["__metrics_path__"] = spec.metrics_path  # a system's service may serve them elsewhere
        targets.append({"targets": [spec.endpoint.address], "labels": labels})
    exporter = topology.endpoint("locust-exporter")
    targets.append(
        {
            "targets": [topology.endpoint("supervisor").address],
            "labels": {"process": "supervisor", "kind": "supervisor"},
        }
    )
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {"job_name": "doorbuster", "static_configs": targets, "honor_labels": True},
            {
                "job_name": "locust",
                "static_configs": [{"targets": [exporter.address], "labels": {"process": "locust"}}],
                "honor_labels": True,
            },
        ],
    }


def write_prometheus_config(topology: Topology, state_root: Path) -> Path:
    from harness.metrics.panels import recording_rules

    path = state_root / "prometheus.yml"
    path.write_text(yaml.safe_dump(scrape_config(topology), sort_keys=False))
    (state_root / "rules.yml").write_text(yaml.safe_dump(recording_rules(), sort_keys=False))
    return path


class PrometheusClient:
    """A few HTTP API calls against a running Prometheus."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise EnvironmentProblem(f"Prometheus at {self.url} did not answer: {exc}") from exc
        if data.get("status") != "success":
            raise EnvironmentProblem(f"Prometheus refused {params.get('query')!r}: {data.get('error')}")
        return data["data"]

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step})
        return list(data["result"])

    def query(self, query: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": query}
        if at is not None:
            params["time"] = at
        return list(self._get("/api/v1/query", params)["result"])

    def targets_up(self) -> dict[str, bool]:
        data = self._get("/api/v1/targets", {})
        return {
            t["labels"].get("process", t["scrapeUrl"]): t["health"] == "up" for t in data["activeTargets"]
        }
