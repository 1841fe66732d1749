"""The one definition of lanes, dependencies, proxies, processes and ports.

Everything else (Toxiproxy's proxies, the apps' addresses, the supervisor's process list,
Prometheus' scrape targets, docker-compose) is derived from :class:`Topology` or checked
against it by a test.

Port layout, from ``ports.base`` (default 21000)::

    base + 0 / 1          sync / async order service (HTTP, /metrics)
    base + 10 + i         sync lane's downstream service for chain dependency i
    base + 20 + i         async lane's downstream service for chain dependency i
    base + 40 + i         async worker for deferred dependency i (/metrics, /health)
    base + 50 / 51        Locust's Prometheus exporter / Locust master (distributed runs)
    base + 90 / 91        Prometheus / the supervisor's own /metrics (doorbuster_toxic_active)
    base + 92             the live view (a page of every panel, both lanes; harness.live.app)
    base + 100 + i        Toxiproxy proxy sync-<dependency i>
    base + 120 + i        Toxiproxy proxy async-<dependency i>
    base + 140            Toxiproxy proxy async-broker
    base + 200 / 201      broker (through its proxy) / RabbitMQ's Erlang distribution port
    base + 202 / 203      Kafka's direct listener (benchmarks, tests) / its KRaft controller

A system of the user's own (:mod:`model.system`) keeps Toxiproxy, Prometheus, the supervisor,
the live view and Locust's ports; its proxies take base + 100 + i (sync) and base + 120 + i (async), and
each service doorbuster starts ``service-<name>``, base + 300 + i, unless it names its port.

Any of them can be moved with ``ports.overrides[<name>]``; every port must lie outside the
Linux ephemeral range 32768-60999 so that an outgoing connection can never take it first.

>>> from model.settings import StackSettings
>>> topo = Topology.from_settings(StackSettings())
>>> topo.proxy("sync", "email").listen
'127.0.0.1:21103'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from model.errors import ConfigError
from model.settings import StackSettings
from model.system import DependencySpec, ServiceSpec, SystemSpec, expand

__all__ = [
    "BROKER",
    "EPHEMERAL_PORTS",
    "LANES",
    "Endpoint",
    "ProcessSpec",
    "ProxySpec",
    "Topology",
    "is_loopback",
]

LANES: tuple[str, ...] = ("sync", "async")
BROKER = "broker"
EPHEMERAL_PORTS = range(32768, 61000)
_MAX_CHAIN = 10


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class ProxySpec:
    """One Toxiproxy proxy: ``<lane>-<dependency>``, listening where the app calls."""

    lane: str
    dependency: str
    listen_endpoint: Endpoint
    upstream_endpoint: Endpoint

    @property
    def name(self) -> str:
        return f"{self.lane}-{self.dependency}"

    @property
    def listen(self) -> str:
        return self.listen_endpoint.address

    @property
    def upstream(self) -> str:
        return self.upstream_endpoint.address


@dataclass(frozen=True, kw_only=True)
class ProcessSpec:
    """A process the supervisor runs. ``kind`` picks how it is started and checked."""

    name: str
    # "toxiproxy" | "broker" | "prometheus" | "live" | "order" | "downstream" | "worker" (the
    # built-in checkout), or "service" (a system's, doorbuster starts it) | "external" (the user runs it)
    kind: str
    lane: str | None
    dependency: str | None
    endpoint: Endpoint
    # Where the process answers ``GET /health`` (HTTP kinds) or accepts TCP (the others).
    http_health: bool
    # A system's service, for its command, health check and metrics path.
    service: ServiceSpec | None = None

    @property
    def health_path(self) -> str:
        if self.service is not None and self.service.health != "tcp":
            return self.service.health
        return "/-/ready" if self.kind == "prometheus" else "/health"

    @property
    def metrics_path(self) -> str | None:
        """Where Prometheus scrapes it; None for a process without Prometheus metrics."""
        if self.service is not None:
            return self.service.metrics
        if self.kind in ("order", "downstream", "worker", "toxiproxy", "prometheus"):
            return "/metrics"
        return None


@dataclass(frozen=True, kw_only=True)
class Topology:
    settings: StackSettings
    ports: dict[str, int]

    @classmethod
    def from_settings(cls, settings: StackSettings) -> Topology:
        if settings.system is not None and settings.system.builtin is None:
            return cls._of_system(settings, settings.system)
        chain = list(settings.chain)
        if len(chain) > _MAX_CHAIN:
            raise ConfigError(f"chain: at most {_MAX_CHAIN} dependencies, got {len(chain)}")
        base = settings.ports.base
        ports: dict[str, int] = {
            "toxiproxy": settings.ports.toxiproxy_api,
            "order-sync": base,
            "order-async": base + 1,
            "broker": base + 200,
            "broker-dist": base + 201,
            "broker-direct": base + 202,
            "broker-controller": base + 203,
            "proxy-async-broker": base + 140,
            "locust-exporter": base + 50,
            "locust-master": base + 51,
            "prometheus": base + 90,
            "supervisor": base + 91,
            "live": base + 92,
        }
        for i, dep in enumerate(chain):
            ports[f"downstream-sync-{dep}"] = base + 10 + i
            ports[f"downstream-async-{dep}"] = base + 20 + i
            ports[f"proxy-sync-{dep}"] = base + 100 + i
            ports[f"proxy-async-{dep}"] = base + 120 + i
        for i, dep in enumerate(settings.deferred):
            ports[f"worker-{dep}"] = base + 40 + i
        unknown = sorted(set(settings.ports.overrides) - set(ports))
        if unknown:
            raise ConfigError(f"ports.overrides: unknown names {unknown}; known names are {sorted(ports)}")
        ports.update(settings.ports.overrides)
        _check_ports(ports)
        return cls(settings=settings, ports=ports)

    @classmethod
    def _of_system(cls, settings: StackSettings, system: SystemSpec) -> Topology:
        base = settings.ports.base
        ports: dict[str, int] = {
            "toxiproxy": settings.ports.toxiproxy_api,
            "locust-exporter": base + 50,
            "locust-master": base + 51,
            "prometheus": base + 90,
            "supervisor": base + 91,
            "live": base + 92,
        }
        for lane, offset in (("sync", 100), ("async", 120)):
            deps = [d for d in system.dependencies if d.lane == lane]
            if len(deps) > _MAX_CHAIN * 2:
                raise ConfigError(f"dependencies: at most {_MAX_CHAIN * 2} on the {lane} lane")
            for i, dep in enumerate(deps):
                ports[f"proxy-{lane}-{dep.name}"] = base + offset + i
        for i, service in enumerate(system.services):
            if service.managed:
                ports[f"service-{service.name}"] = service.port or base + 300 + i
        unknown = sorted(set(settings.ports.overrides) - set(ports))
        if unknown:
            raise ConfigError(f"ports.overrides: unknown names {unknown}; known names are {sorted(ports)}")
        ports.update(settings.ports.overrides)
        _check_ports(ports)
        return cls(settings=settings, ports=ports)

    # -- the system --------------------------------------------------------------------
    @property
    def builtin(self) -> bool:
        return self.settings.builtin

    @property
    def system(self) -> SystemSpec | None:
        """The user's system; None for the built-in checkout."""
        return None if self.builtin else self.settings.system

    @property
    def lanes(self) -> tuple[str, ...]:
        """The lanes this system has, in LANES' order."""
        if self.system is None:
            return LANES
        return tuple(lane for lane in LANES if lane in self.system.lanes)

    @property
    def has_broker(self) -> bool:
        return self.builtin

    def address_values(self) -> dict[str, str]:
        """What ``{host}``, ``{port:X}``, ``{service:X}`` and ``{proxy:X}`` stand for."""
        values = {"host": self.host}
        system = self.system
        if system is None:
            for lane in LANES:
                values[f"service:order-{lane}"] = self.endpoint(f"order-{lane}").address
                values[f"port:order-{lane}"] = str(self.ports[f"order-{lane}"])
            return values
        for service in system.services:
            endpoint = self.service_endpoint(service.name)
            values[f"service:{service.name}"] = endpoint.address
            if service.managed:
                values[f"port:{service.name}"] = str(endpoint.port)
        for dep in system.dependencies:
            listen = self.endpoint(f"proxy-{dep.lane}-{dep.name}").address
            values[f"proxy:{dep.proxy_name}"] = listen
            values.setdefault(f"proxy:{dep.name}", listen)
        return values

    def service_endpoint(self, name: str) -> Endpoint:
        system = self.system
        if system is None:
            raise ConfigError("the built-in checkout has no system services")
        service = system.service(name)
        if service.managed:
            return self.endpoint(f"service-{name}")
        parts = urlsplit(service.url or "")
        return Endpoint(host=str(parts.hostname), port=int(parts.port or 80))

    def lane_url(self, lane: str) -> str:
        """The URL a shopper sends a lane's request to."""
        _check_lane(lane)
        spec = self.settings.system
        if spec is None:
            return f"{self.endpoint(f'order-{lane}').url}/orders"
        if lane not in spec.lanes:
            raise ConfigError(f"system {spec.name} has no {lane} lane; it has {', '.join(self.lanes)}")
        return expand(spec.lanes[lane].url, self.address_values())

    def _system_dependency(self, lane: str, name: str) -> DependencySpec | None:
        system = self.system
        if system is None:
            return None
        for dep in system.dependencies:
            if dep.lane == lane and dep.name == name:
                return dep
        return None

    # -- addresses ---------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.settings.ports.host

    def endpoint(self, name: str) -> Endpoint:
        return Endpoint(host=self.host, port=self.ports[name])

    @property
    def toxiproxy(self) -> Endpoint:
        return self.endpoint("toxiproxy")

    @property
    def prometheus(self) -> Endpoint:
        return self.endpoint("prometheus")

    @property
    def broker(self) -> Endpoint:
        return self.endpoint("broker")

    def order_service(self, lane: str) -> Endpoint:
        """Where a lane's requests go: its order service, or a system's lane entry."""
        _check_lane(lane)
        if self.system is not None:
            if lane not in self.lanes:
                raise ConfigError(
                    f"system {self.system.name} has no {lane} lane; it has {', '.join(self.lanes)}"
                )
            parts = urlsplit(self.lane_url(lane))
            return Endpoint(host=str(parts.hostname), port=int(parts.port or 80))
        return self.endpoint(f"order-{lane}")

    def dependencies(self, lane: str) -> tuple[str, ...]:
        """Dependencies a lane reaches through Toxiproxy: the chain, and the broker for async."""
        _check_lane(lane)
        if self.system is not None:
            return tuple(d.name for d in self.system.dependencies if d.lane == lane)
        chain = tuple(self.settings.chain)
        return (*chain, BROKER) if lane == "async" else chain

    # -- proxies -----------------------------------------------------------------------
    def broker_url(self, *, direct: bool = False) -> str:
        """How a client reaches the broker: through its Toxiproxy proxy (the lane), or straight
        to it (benchmarks, conformance tests).  Kafka tells clients where to connect next, so it
        has a listener of its own for direct clients (``broker-direct``)."""
        name = self.settings.broker
        if not direct:
            address = self.proxy("async", BROKER).listen
        else:
            address = self.endpoint("broker-direct" if name == "kafka" else "broker").address
        if name.startswith("redis"):
            return f"redis://{address}/0"
        if name == "kafka":
            return f"kafka://{address}"
        if name == "sqs":
            return f"http://{address}"
        # A short heartbeat, so a silently stalled connection (a Toxiproxy ``timeout`` toxic)
        # is noticed in seconds, not minutes.
        return f"amqp://guest:guest@{address}/?heartbeat=5"

    def proxy(self, lane: str, dependency: str) -> ProxySpec:
        if dependency not in self.dependencies(lane):
            raise ConfigError(
                f"lane {lane!r} has no dependency {dependency!r}; it has {', '.join(self.dependencies(lane))}"
            )
        declared = self._system_dependency(lane, dependency)
        if declared is not None:
            host, _, port = expand(declared.upstream, self.address_values()).rpartition(":")
            upstream = Endpoint(host=host, port=int(port))
        elif dependency == BROKER:
            upstream = self.broker
        else:
            upstream = self.endpoint(f"downstream-{lane}-{dependency}")
        return ProxySpec(
            lane=lane,
            dependency=dependency,
            listen_endpoint=self.endpoint(f"proxy-{lane}-{dependency}"),
            upstream_endpoint=upstream,
        )

    @property
    def proxies(self) -> tuple[ProxySpec, ...]:
        return tuple(self.proxy(lane, dep) for lane in LANES for dep in self.dependencies(lane))

    def lanes_with(self, dependency: str, lanes: tuple[str, ...]) -> tuple[str, ...]:
        """``lanes``; but on a system of the user's, "both" (all of LANES) means the lanes that
        have ``dependency`` (the checkout's lanes have the same chain, and the broker is named)."""
        if self.builtin or tuple(lanes) != LANES:
            return tuple(lanes)
        having = tuple(lane for lane in LANES if dependency in self.dependencies(lane))
        return having or tuple(lanes)

    @property
    def http_fault_targets(self) -> tuple[tuple[str, str], ...]:
        """(lane, dependency) of the built-in downstream services, which take HTTP faults."""
        if not self.builtin:
            return ()
        return tuple((lane, dep) for lane in LANES for dep in self.settings.chain)

    # -- processes ---------------------------------------------------------------------
    @property
    def processes(self) -> tuple[ProcessSpec, ...]:
        """Every process, in start order (stop order is the reverse)."""
        if self.system is not None:
            return self._system_processes(self.system)
        procs = [
            ProcessSpec(
                name="toxiproxy",
                kind="toxiproxy",
                lane=None,
                dependency=None,
                endpoint=self.toxiproxy,
                http_health=False,
            ),
            ProcessSpec(
                name="broker",
                kind="broker",
                lane="async",
                dependency=None,
                endpoint=self.broker,
                http_health=False,
            ),
        ]
        procs.append(
            ProcessSpec(
                name="prometheus",
                kind="prometheus",
                lane=None,
                dependency=None,
                endpoint=self.endpoint("prometheus"),
                http_health=True,
            )
        )
        for lane in LANES:
            for dep in self.settings.chain:
                procs.append(
                    ProcessSpec(
                        name=f"downstream-{lane}-{dep}",
                        kind="downstream",
                        lane=lane,
                        dependency=dep,
                        endpoint=self.endpoint(f"downstream-{lane}-{dep}"),
                        http_health=True,
                    )
                )
        for lane in LANES:
            procs.append(
                ProcessSpec(
                    name=f"order-{lane}",
                    kind="order",
                    lane=lane,
                    dependency=None,
                    endpoint=self.order_service(lane),
                    http_health=True,
                )
            )
        for dep in self.settings.deferred:
            procs.append(
                ProcessSpec(
                    name=f"worker-{dep}",
                    kind="worker",
                    lane="async",
                    dependency=dep,
                    endpoint=self.endpoint(f"worker-{dep}"),
                    http_health=True,
                )
            )
        procs.append(self._live_process())
        return tuple(procs)

    def _live_process(self) -> ProcessSpec:
        """The live view: a page drawn from Prometheus, never part of the system under test."""
        return ProcessSpec(
            name="live",
            kind="live",
            lane=None,
            dependency=None,
            endpoint=self.endpoint("live"),
            http_health=True,
        )

    def _system_processes(self, system: SystemSpec) -> tuple[ProcessSpec, ...]:
        procs = [
            ProcessSpec(
                name="toxiproxy", kind="toxiproxy", lane=None, dependency=None,
                endpoint=self.toxiproxy, http_health=False,
            ),
            ProcessSpec(
                name="prometheus", kind="prometheus", lane=None, dependency=None,
                endpoint=self.endpoint("prometheus"), http_health=True,
            ),
        ]  # fmt: skip
        for service in system.services:
            procs.append(
                ProcessSpec(
                    name=service.name,
                    kind="service" if service.managed else "external",
                    lane=None,
                    dependency=None,
                    endpoint=self.service_endpoint(service.name),
                    http_health=service.health != "tcp",
                    service=service,
                )
            )
        procs.append(self._live_process())
        return tuple(procs)

    def process(self, name: str) -> ProcessSpec:
        for spec in self.processes:
            if spec.name == name:
                return spec
        raise ConfigError(f"no process named {name!r}")

    # -- serialisation -----------------------------------------------------------------
    def to_json(self) -> str:
        return self.settings.model_dump_json(by_alias=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Topology:
        return cls.from_settings(StackSettings.model_validate_json(text))


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only places load goes unless a user allows more."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_lane(lane: str) -> None:
    if lane not in LANES:
        raise ConfigError(f"unknown lane {lane!r}; lanes are {', '.join(LANES)}")


def _check_ports(ports: dict[str, int]) -> None:
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise ConfigError(f"port {name}={port} is not a TCP port")
        if port in EPHEMERAL_PORTS:
            raise ConfigError(
                f"port {name}={port} lies in the ephemeral range "
                f"{EPHEMERAL_PORTS.start}-{EPHEMERAL_PORTS.stop - 1}; "
                "choose another base or override it"
            )
        if port in seen:
            raise ConfigError(f"ports {seen[port]} and {name} are both {port}")
        seen[port] = name
