from __future__ import annotations

import pytest

from harness.faults.chaos import parse_attributes
from model.errors import ConfigError
from model.faults import TOXIC_TYPES, FaultSpec
from model.settings import StackSettings
from model.topology import Topology

TOPO = Topology.from_settings(StackSettings())


@pytest.mark.parametrize(
    ("type_", "attributes"),
    [
        ("latency", {"latency": 3000, "jitter": 100}),
        ("bandwidth", {"rate": 10}),
        ("slow_close", {"delay": 100}),
        ("timeout", {"timeout": 0}),
        ("reset_peer", {}),
        ("slicer", {"average_size": 64, "size_variation": 8, "delay": 10}),
        ("limit_data", {"bytes": 1024}),
        ("http_error", {"rate": 0.5, "status": 503}),
        ("http_delay", {"latency": 500}),
        ("http_delay", {"latency": 30000, "rate": 0.7}),
    ],
)
def test_every_toxiproxy_type_and_attribute_is_accepted(type_: str, attributes: dict[str, float]) -> None:
    FaultSpec(dependency="email", type=type_, attributes=attributes).validate(TOPO)


def test_the_list_of_types_is_toxiproxys() -> None:
    assert set(TOXIC_TYPES) == {
        "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (FaultSpec(dependency="email", type="latencyy"), "unknown fault type 'latencyy'"),
        (FaultSpec(dependency="email", type="latency"), "missing attribute"),
        (FaultSpec(dependency="email", type="latency", attributes={"latency": -1}), "negative"),
        (
            FaultSpec(dependency="email", type="latency", attributes={"latency": 1, "x": 1}),
            "unknown attribute",
        ),
        (
            FaultSpec(dependency="emial", type="latency", attributes={"latency": 1}),
            "no dependency 'emial'",
        ),
        (
            FaultSpec(dependency="email", type="latency", attributes={"latency": 1.5}),
            "whole number",
        ),
        (
            FaultSpec(dependency="email", type="latency", attributes={"latency": 1}, toxicity=2),
            "toxicity",
        ),
        (
            FaultSpec(dependency="email", type="latency", attributes={"latency": 1}, stream="sideways"),
            "stream",
        ),
        (
            FaultSpec(dependency="broker", type="http_error", attributes={"rate": 1}, lanes=("async",)),
            "AMQP",
        ),
        (FaultSpec(dependency="email", type="http_error", attributes={"rate": 2}), "fraction"),
        (
            FaultSpec(dependency="email", type="http_delay", attributes={"latency": 1, "rate": 1.5}),
            "fraction",
        ),
        (
            FaultSpec(dependency="email", type="http_error", attributes={"rate": 1, "status": 200}),
            "status",
        ),
        (
            FaultSpec(dependency="broker", type="latency", attributes={"latency": 1}),
            "lane 'sync' has no",
        ),
    ],
)
def test_bad_faults_are_refused_naming_the_problem(spec: FaultSpec, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        spec.validate(TOPO)


def test_parse_attributes() -> None:
    assert parse_attributes(["latency=3000", "rate=0.25"]) == {"latency": 3000, "rate": 0.25}
    for bad in (["latency"], ["=3"], ["latency=abc"], ["latency=nan"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError):
            parse_attributes(bad)
