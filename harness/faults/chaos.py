"""Faults applied: Toxiproxy toxics on any hop, and HTTP faults on the downstream services.

What a fault is, and its validation before anything reaches Toxiproxy or a service, is
:class:`~model.faults.FaultSpec`'s; this module applies and removes them.

Toxiproxy is driven through :class:`~harness.faults.toxiproxy_client.ToxiproxyClient`, one per
server address, every call bounded in time; it translates Toxiproxy's errors (and
``requests``') into the harness's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests

from harness.faults.toxiproxy_client import ToxiproxyClient
from model.errors import ConfigError, ToxiproxyUnavailable
from model.faults import FaultSpec
from model.topology import Topology

__all__ = [
    "ActiveFault",
    "Chaos",
    "parse_attributes",
]


def parse_attributes(pairs: Iterable[str]) -> dict[str, int | float]:
    """``["latency=3000", "jitter=50"]`` -> ``{"latency": 3000, "jitter": 50}``.

    >>> parse_attributes(["rate=0.5", "status=503"])
    {'rate': 0.5, 'status': 503}
    """
    attributes: dict[str, int | float] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--attr {pair!r}: expected KEY=VALUE, for example latency=3000")
        try:
            value: int | float = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"--attr {key}: expected a number, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"--attr {key}: expected a finite number, got {raw!r}")
        if key in attributes:
            raise ConfigError(f"--attr {key} given twice")
        attributes[key] = value
    return attributes


@dataclass(frozen=True, kw_only=True)
class ActiveFault:
    lane: str
    dependency: str
    kind: str  # "toxic" | "http" | "proxy_disabled"
    type: str
    name: str
    attributes: dict[str, Any]
    toxicity: float = 1.0
    stream: str = "downstream"

    def describe(self) -> str:
        """``sync-payment latency toxic 'slow' {"latency": 3000}``, ``async-email proxy disabled``."""
        where = f"{self.lane}-{self.dependency}"
        if self.kind == "proxy_disabled":
            return f"{where} proxy disabled"
        what = f"{self.type} toxic {self.name!r}" if self.kind == "toxic" else self.type
        return f"{where} {what} {json.dumps(self.attributes, sort_keys=True)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "dependency": self.dependency,
            "kind": self.kind,
            "type": self.type,
            "name": self.name,
            "attributes": self.attributes,
            "toxicity": self.toxicity,
            "stream": self.stream,
        }


class Chaos:
    """Applies and removes faults on a running stack.

    ``timeout_s`` bounds each call to Toxiproxy and to a service's fault API, so a server that
    stops answering makes a call fail with :class:`ToxiproxyUnavailable`, never hang.
    """

    def __init__(self, topology: Topology, *, timeout_s: float = 5.0) -> None:
        self.topology = topology
        self.timeout_s = timeout_s
        self.toxiproxy = ToxiproxyClient(topology.toxiproxy, timeout_s=timeout_s)

    def ping(self) -> bool:
        """Does Toxiproxy answer (within a second at most)?"""
        quick = ToxiproxyClient(self.topology.toxiproxy, timeout_s=min(1.0, self.timeout_s))
        try:
            quick.version()
        except ToxiproxyUnavailable:
            return False
        finally:
            quick.close()
        return True

    def ensure_proxies(self) -> None:
        """Create every proxy of the topology (replacing any that point elsewhere)."""
        wanted = [
            {"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": True}
            for p in self.topology.proxies
        ]
        self.toxiproxy.populate(wanted)

    def proxies(self) -> dict[str, Any]:
        """Toxiproxy's own view: ``{name: {listen, upstream, enabled, toxics}}``."""
        return self.toxiproxy.proxies()

    def _proxy(self, lane: str, dependency: str) -> str:
        """The name of the lane's proxy for ``dependency``, after checking Toxiproxy has it."""
        name = self.topology.proxy(lane, dependency).name
        if name not in self.proxies():
            raise ToxiproxyUnavailable(f"Toxiproxy has no proxy {name}; run doorbuster up again")
        return name

    # -- applying ----------------------------------------------------------------------
    def add(self, spec: FaultSpec) -> list[ActiveFault]:
        spec.validate(self.topology)
        applied: list[ActiveFault] = []
        for lane in self.topology.lanes_with(spec.dependency, spec.lanes):
            if spec.is_http:
                self._add_http(lane, spec)
            else:
                self.toxiproxy.add_toxic(
                    self._proxy(lane, spec.dependency),
                    type=spec.type,
                    name=spec.toxic_name,
                    stream=spec.stream,
                    toxicity=spec.toxicity,
                    attributes={k: int(v) for k, v in spec.attributes.items()},
                )
            applied.append(
                ActiveFault(
                    lane=lane,
                    dependency=spec.dependency,
                    kind="http" if spec.is_http else "toxic",
                    type=spec.type,
                    name=spec.type if spec.is_http else spec.toxic_name,
                    attributes=dict(spec.attributes),
                    toxicity=spec.toxicity,
                    stream=spec.stream,
                )
            )
        return applied

    def remove(self, dependency: str, lanes: tuple[str, ...], name: str | None = None) -> int:
        """Remove the named fault, or every fault, from ``dependency``; returns how many."""
        removed = 0
        for fault in self.active():
            if fault.dependency != dependency or fault.lane not in lanes:
                continue
            if name is not None and name not in (fault.name, fault.type):
                continue
            if fault.kind == "toxic":
                self.toxiproxy.remove_toxic(self._proxy(fault.lane, dependency), fault.name)
            elif fault.kind == "http":
                self._clear_http(fault.lane, dependency, fault.type)
            else:
                self.set_enabled(dependency, (fault.lane,), enabled=True)
            removed += 1
        return removed

    def reset(self) -> None:
        """Every proxy enabled, every toxic and HTTP fault gone."""
        self.toxiproxy.reset()
        for lane, dep in self.topology.http_fault_targets:
            self._put_http(lane, dep, {})

    def set_enabled(self, dependency: str, lanes: tuple[str, ...], *, enabled: bool) -> None:
        for lane in self.topology.lanes_with(dependency, lanes):
            self.toxiproxy.set_enabled(self._proxy(lane, dependency), enabled=enabled)

    # -- looking -----------------------------------------------------------------------
    def active(self) -> list[ActiveFault]:
        faults: list[ActiveFault] = []
        by_name = {p.name: p for p in self.topology.proxies}
        for name, data in sorted(self.proxies().items()):
            spec = by_name.get(name)
            if spec is None:
                continue
            if not data.get("enabled", True):
                faults.append(
                    ActiveFault(
                        lane=spec.lane,
                        dependency=spec.dependency,
                        kind="proxy_disabled",
                        type="down",
                        name="down",
                        attributes={},
                    )
                )
            for toxic in data.get("toxics") or []:
                faults.append(
                    ActiveFault(
                        lane=spec.lane,
                        dependency=spec.dependency,
                        kind="toxic",
                        type=toxic["type"],
                        name=toxic["name"],
                        attributes=dict(toxic.get("attributes") or {}),
                        toxicity=float(toxic.get("toxicity", 1.0)),
                        stream=toxic.get("stream", "downstream"),
                    )
                )
        for lane, dep in self.topology.http_fault_targets:
            faults.extend(self._http_faults(lane, dep))
        return faults

    # -- HTTP faults, on the downstream services themselves ----------------------------
    def _admin_url(self, lane: str, dependency: str) -> str:
        return f"{self.topology.endpoint(f'downstream-{lane}-{dependency}').url}/admin/faults"

    def _get_http(self, lane: str, dependency: str) -> dict[str, Any]:
        url = self._admin_url(lane, dependency)
        try:
            response = requests.get(url, timeout=self.timeout_s)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise ToxiproxyUnavailable(f"{lane} {dependency} service at {url} did not answer: {exc}") from exc
        data: dict[str, Any] = response.json()
        return data

    def _put_http(self, lane: str, dependency: str, body: dict[str, Any]) -> None:
        url = self._admin_url(lane, dependency)
        try:
            response = requests.put(url, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise ToxiproxyUnavailable(f"{lane} {dependency} service at {url} did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise ConfigError(f"{lane} {dependency} service refused the fault: {response.text}")

    def _add_http(self, lane: str, spec: FaultSpec) -> None:
        current = self._get_http(lane, spec.dependency)
        if spec.type == "http_error":
            current["error_rate"] = spec.attributes["rate"] * spec.toxicity
            current["error_status"] = int(spec.attributes.get("status", 500))
        else:
            current["extra_latency_ms"] = spec.attributes["latency"]
            current["extra_jitter_ms"] = spec.attributes.get("jitter", 0)
            current["delay_rate"] = spec.attributes.get("rate", 1.0) * spec.toxicity
        self._put_http(lane, spec.dependency, current)

    def _clear_http(self, lane: str, dependency: str, fault_type: str) -> None:
        current = self._get_http(lane, dependency)
        if fault_type == "http_error":
            current["error_rate"], current["error_status"] = 0, 500
        else:
            current["extra_latency_ms"], current["extra_jitter_ms"], current["delay_rate"] = 0, 0, 1.0
        self._put_http(lane, dependency, current)

    def _http_faults(self, lane: str, dependency: str) -> list[ActiveFault]:
        current = self._get_http(lane, dependency)
        faults = []
        if current.get("error_rate"):
            faults.append(
                ActiveFault(
                    lane=lane,
                    dependency=dependency,
                    kind="http",
                    type="http_error",
                    name="http_error",
                    attributes={"rate": current["error_rate"], "status": current["error_status"]},
                )
            )
        if current.get("extra_latency_ms") or current.get("extra_jitter_ms"):
            faults.append(
                ActiveFault(
                    lane=lane,
                    dependency=dependency,
                    kind="http",
                    type="http_delay",
                    name="http_delay",
                    attributes={
                        "latency": current["extra_latency_ms"],
                        "jitter": current["extra_jitter_ms"],
                        "rate": current.get("delay_rate", 1.0),
                    },
                )
            )
        return faults
