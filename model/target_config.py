"""What one target process is told at start: its whole configuration, resolved.

The control plane resolves every address a target needs (where it listens, where each of its
dependencies answers, which is the dependency's Toxiproxy proxy, and the broker's URL) from the
:class:`~model.topology.Topology` it runs, and hands the result over as one JSON value.  The
target derives nothing itself, so it could run under any supervisor that writes this record.

>>> from model.settings import StackSettings
>>> topology = Topology.from_settings(StackSettings())
>>> config = resolve_target_config(topology, topology.process("order-sync"), data_dir=Path("/data"))
>>> config.dependency_url("email")
'http://127.0.0.1:21103/work'
>>> TargetConfig.model_validate_json(config.model_dump_json()) == config
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from model.errors import ConfigError
from model.settings import StackSettings
from model.topology import ProcessSpec, Topology

__all__ = [
    "MAX_SEED",
    "TARGET_CONFIG_ENV",
    "TARGET_ROLES",
    "TARGET_SEED_PATH",
    "TargetConfig",
    "TargetConfigs",
    "TargetRole",
    "resolve_target_config",
    "resolve_target_configs",
]

# The environment variable a supervisor puts one TargetConfig's JSON in.
TARGET_CONFIG_ENV = "DOORBUSTER_TARGET_CONFIG"

# Where a target takes the seed of its random draws (``PUT {"seed": N}``): not part of its
# configuration, since one stack serves many runs, each with its own seed, sent at its start.
TARGET_SEED_PATH = "/admin/seed"
# A run's seed is 63 bits (model.scenario's ``seed``), so it fits a signed 64-bit integer anywhere.
MAX_SEED = 2**63 - 1

TargetRole = Literal["downstream", "order", "worker"]
TARGET_ROLES: tuple[str, ...] = ("downstream", "order", "worker")


class TargetConfig(BaseModel):
    """One target process: its role, where it listens, where it calls, and its settings.

    ``dependency_addresses`` maps each dependency the process calls to the ``host:port`` it
    calls it at (its proxy).  ``settings`` carries the chain, the lanes' retry policies and
    ``time_scale``; a target never reads ``settings.ports``: every address it uses is here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: TargetRole
    lane: Literal["sync", "async"]
    dependency: str | None = None
    host: str
    port: int = Field(ge=1, le=65535)
    dependency_addresses: dict[str, str] = Field(default_factory=dict)
    broker_url: str | None = None
    settings: StackSettings
    data_dir: Path

    @model_validator(mode="after")
    def _complete_for_its_role(self) -> TargetConfig:
        if self.role in ("downstream", "worker"):
            if self.dependency is None:
                raise ValueError(f"a {self.role} needs its dependency")
            if self.dependency not in self.settings.chain:
                raise ValueError(
                    f"dependency {self.dependency!r} is not in chain {list(self.settings.chain)}"
                )
        called = _dependencies_called(self.role, self.lane, self.dependency, self.settings)
        missing = [dep for dep in called if dep not in self.dependency_addresses]
        if missing:
            raise ValueError(f"dependency_addresses: no address for {missing}")
        if self.uses_broker and self.broker_url is None:
            raise ValueError(f"the {self.name} process needs broker_url")
        return self

    @property
    def name(self) -> str:
        """The process's name, as the topology names it (``order-sync``, ``worker-email``)."""
        if self.role == "downstream":
            return f"downstream-{self.lane}-{self.dependency}"
        if self.role == "worker":
            return f"worker-{self.dependency}"
        return f"order-{self.lane}"

    @property
    def uses_broker(self) -> bool:
        return _uses_broker(self.role, self.lane)

    def dependency_url(self, dependency: str) -> str:
        """Where this process sends a dependency its work."""
        return f"http://{self.dependency_addresses[dependency]}/work"


class TargetConfigs(RootModel[dict[str, TargetConfig]]):
    """Several processes' configurations by process name: one file for docker-compose."""


def resolve_target_config(topology: Topology, spec: ProcessSpec, *, data_dir: Path) -> TargetConfig:
    """The configuration of the target process ``spec`` of ``topology``."""
    if spec.kind not in TARGET_ROLES or spec.lane not in ("sync", "async"):
        raise ConfigError(f"process {spec.name!r} is not a target process")
    called = _dependencies_called(spec.kind, spec.lane, spec.dependency, topology.settings)
    return TargetConfig.model_validate(
        {
            "role": spec.kind,
            "lane": spec.lane,
            "dependency": spec.dependency,
            "host": spec.endpoint.host,
            "port": spec.endpoint.port,
            "dependency_addresses": {dep: topology.proxy(spec.lane, dep).listen for dep in called},
            "broker_url": topology.broker_url() if _uses_broker(spec.kind, spec.lane) else None,
            "settings": topology.settings,
            "data_dir": data_dir,
        }
    )


def _dependencies_called(
    role: str, lane: str, dependency: str | None, settings: StackSettings
) -> tuple[str, ...]:
    """What a process calls: a worker its step, the sync lane the chain, the async lane its
    critical path (the broker has a URL of its own)."""
    if role == "worker" and dependency is not None:
        return (dependency,)
    if role == "order":
        return tuple(settings.chain) if lane == "sync" else settings.critical
    return ()


def _uses_broker(role: str, lane: str) -> bool:
    return role == "worker" or (role == "order" and lane == "async")


def resolve_target_configs(topology: Topology, *, data_dir: Path) -> TargetConfigs:
    """Every target process's configuration, by process name."""
    return TargetConfigs(
        {
            spec.name: resolve_target_config(topology, spec, data_dir=data_dir)
            for spec in topology.processes
            if spec.kind in TARGET_ROLES
        }
    )
