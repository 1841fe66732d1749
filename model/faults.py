"""Fault specifications: Toxiproxy's toxics on any hop, and HTTP faults on the downstream services.

Every fault is validated here, before anything reaches Toxiproxy or a service: every Toxiproxy
toxic type and attribute is accepted under its Toxiproxy name, and unknown names, missing or
negative values are refused with a message that names them.  Applying them is the control
plane's (harness.faults.chaos).  :meth:`FaultSpec.from_json` reads one from JSON (the live
view's request body, a Chaos Toolkit activity's arguments, the fault holder's command line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model.errors import ConfigError
from model.json_values import number_value, object_of, refuse_unknown, text_value
from model.lanes import parse_lane_list, parse_lanes
from model.topology import BROKER, LANES, Topology

__all__ = ["FAULT_FIELDS", "HTTP_FAULTS", "STREAMS", "TOXIC_TYPES", "FaultSpec"]

# Toxiproxy v2.12's toxics: attribute -> required?  (toxics/*.go in the Toxiproxy source)
TOXIC_TYPES: dict[str, dict[str, bool]] = {
    "latency": {"latency": True, "jitter": False},
    "bandwidth": {"rate": True},
    "slow_close": {"delay": True},
    "timeout": {"timeout": True},
    "reset_peer": {"timeout": False},
    "slicer": {"average_size": True, "size_variation": False, "delay": False},
    "limit_data": {"bytes": True},
}
# Faults a TCP proxy can not make, applied by the downstream service itself.
HTTP_FAULTS: dict[str, dict[str, bool]] = {
    "http_error": {"rate": True, "status": False},
    # rate: the fraction of requests slowed (a provider that hangs on most requests)
    "http_delay": {"latency": True, "jitter": False, "rate": False},
}
STREAMS = ("upstream", "downstream")
# A fault as JSON: ``lane`` (sync, async or both: the CLI's --lane, the live view's) and
# ``lanes`` (both, a lane or a list of lanes: the Chaos Toolkit extension's) mean the same.
FAULT_FIELDS = frozenset({"dependency", "type", "lane", "lanes", "attributes", "toxicity", "stream", "name"})


@dataclass(frozen=True, kw_only=True)
class FaultSpec:
    """One fault to apply to one dependency on one or both lanes."""

    dependency: str
    type: str
    lanes: tuple[str, ...] = LANES
    attributes: dict[str, int | float] = field(default_factory=dict)
    toxicity: float = 1.0
    stream: str = "downstream"
    name: str | None = None

    @property
    def is_http(self) -> bool:
        return self.type in HTTP_FAULTS

    @property
    def toxic_name(self) -> str:
        return self.name or f"doorbuster_{self.type}_{self.stream}"

    @property
    def fault_name(self) -> str:
        """What finds it again to remove it: an HTTP fault's type, a toxic's name."""
        return self.type if self.is_http else self.toxic_name

    @classmethod
    def from_json(cls, data: Any) -> FaultSpec:
        """A fault from a JSON object, checked as far as it can be without a stack (which
        dependencies a lane has is the topology's: :meth:`validate`); a ConfigError names the
        field and what was expected.  Absent or null optional fields take their defaults.

        >>> FaultSpec.from_json({"dependency": "email", "type": "latency", "lane": "async",
        ...                      "attributes": {"latency": 3000}}).lanes
        ('async',)
        """
        data = object_of(data)
        refuse_unknown(data, FAULT_FIELDS)
        attributes = data.get("attributes")
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise ConfigError(f'attributes: expected an object like {{"latency": 1000}}, got {attributes!r}')
        toxicity = data.get("toxicity")
        return cls(
            dependency=str(
                text_value(
                    data, "dependency", expected="a dependency's name (payment, broker...)", required=True
                )
            ),
            type=str(
                text_value(
                    data, "type", expected="a fault type (latency, timeout, http_error...)", required=True
                )
            ),
            lanes=_lanes_of(data),
            attributes={
                str(key): number_value(f"attributes.{key}", value) for key, value in attributes.items()
            },
            toxicity=1.0 if toxicity is None else float(number_value("toxicity", toxicity)),
            stream=text_value(data, "stream", expected="upstream or downstream", required=False)
            or "downstream",
            name=text_value(data, "name", expected="a toxic name", required=False),
        )

    def as_json(self) -> dict[str, Any]:
        """What :meth:`from_json` reads back as this spec."""
        return {
            "dependency": self.dependency, "type": self.type, "lanes": list(self.lanes),
            "attributes": self.attributes, "toxicity": self.toxicity, "stream": self.stream,
            "name": self.name,
        }  # fmt: skip

    def validate(self, topology: Topology) -> FaultSpec:
        """Refuse anything Toxiproxy or a service would refuse (or silently misread)."""
        for lane in topology.lanes_with(self.dependency, self.lanes):
            if lane not in LANES:
                raise ConfigError(f"unknown lane {lane!r}; lanes are sync, async, both")
            topology.proxy(lane, self.dependency)  # raises ConfigError naming the dependency
        schema = TOXIC_TYPES.get(self.type) or HTTP_FAULTS.get(self.type)
        if schema is None:
            known = ", ".join([*TOXIC_TYPES, *HTTP_FAULTS])
            raise ConfigError(f"unknown fault type {self.type!r}; known types: {known}")
        unknown = sorted(set(self.attributes) - set(schema))
        if unknown:
            raise ConfigError(
                f"{self.type}: unknown attribute(s) {', '.join(unknown)}; "
                f"{self.type} takes {', '.join(schema) or 'no attributes'}"
            )
        missing = [name for name, required in schema.items() if required and name not in self.attributes]
        if missing:
            raise ConfigError(f"{self.type}: missing attribute(s) {', '.join(missing)}")
        for key, value in self.attributes.items():
            if value < 0:
                raise ConfigError(f"{self.type}: {key} must not be negative, got {value}")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ConfigError(f"toxicity must be from 0 to 1, got {self.toxicity}")
        if self.stream not in STREAMS:
            raise ConfigError(f"stream must be upstream or downstream, got {self.stream!r}")
        if self.is_http:
            if self.dependency == BROKER:
                raise ConfigError(f"{self.type} is an HTTP fault; the broker hop speaks AMQP")
            if not topology.http_fault_targets:
                raise ConfigError(
                    f"{self.type} is an HTTP fault, served by the built-in checkout's downstream "
                    f"services; {self.dependency} is a TCP hop: give it a toxic (latency, timeout, "
                    "reset_peer, ...) or cut it (down)"
                )
            if self.attributes.get("rate", 0) > 1:
                raise ConfigError(f"{self.type}: rate is a fraction from 0 to 1")
            if self.type == "http_error":
                status = self.attributes.get("status", 500)
                if not (isinstance(status, int) and 400 <= status <= 599):
                    raise ConfigError(
                        f"http_error: status must be an HTTP error from 400 to 599, got {status}"
                    )
        else:
            for key, value in self.attributes.items():
                if not float(value).is_integer():
                    raise ConfigError(f"{self.type}: {key} must be a whole number, got {value}")
        return self


def _lanes_of(data: dict[str, Any]) -> tuple[str, ...]:
    """``lane`` or ``lanes`` (not both), default both lanes."""
    if "lane" in data and "lanes" in data:
        raise ConfigError("lane, lanes: give one of them (they mean the same)")
    if "lanes" in data:
        return parse_lane_list(data["lanes"])
    return parse_lanes(data.get("lane", "both"))
