from __future__ import annotations

import pytest

from model.errors import ConfigError
from model.settings import PortSettings, StackSettings
from model.topology import BROKER, EPHEMERAL_PORTS, LANES, Topology


def test_one_proxy_per_lane_per_dependency_broker_only_on_async() -> None:
    topo = Topology.from_settings(StackSettings())
    names = {p.name for p in topo.proxies}
    for dep in ("payment", "inventory", "warehouse", "email", "analytics"):
        assert {f"sync-{dep}", f"async-{dep}"} <= names
    assert "async-broker" in names
    assert "sync-broker" not in names
    assert len(names) == 11


def test_proxies_point_at_their_own_lanes_services() -> None:
    topo = Topology.from_settings(StackSettings())
    for lane in LANES:
        for dep in topo.settings.chain:
            proxy = topo.proxy(lane, dep)
            assert proxy.upstream_endpoint == topo.endpoint(f"downstream-{lane}-{dep}")
            assert proxy.listen != proxy.upstream
    assert topo.proxy("async", BROKER).upstream_endpoint == topo.broker


def test_every_port_on_loopback_unique_and_outside_the_ephemeral_range() -> None:
    topo = Topology.from_settings(StackSettings())
    assert topo.host == "127.0.0.1"
    ports = list(topo.ports.values())
    assert len(ports) == len(set(ports))
    assert not [p for p in ports if p in EPHEMERAL_PORTS]
    assert topo.ports["toxiproxy"] == 8474


def test_ports_follow_the_base_and_overrides() -> None:
    settings = StackSettings(ports=PortSettings(base=25000, overrides={"order-sync": 26000}))
    topo = Topology.from_settings(settings)
    assert topo.ports["order-async"] == 25001
    assert topo.order_service("sync").port == 26000


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        (PortSettings(base=32700), "ephemeral range"),
        (PortSettings(overrides={"nope": 20000}), "unknown names"),
        (PortSettings(overrides={"order-sync": 21001}), "both 21001"),
    ],
)
def test_bad_ports_are_refused_with_their_name(ports: PortSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Topology.from_settings(StackSettings(ports=ports))


def test_unknown_lane_or_dependency_names_what_exists() -> None:
    topo = Topology.from_settings(StackSettings())
    with pytest.raises(ConfigError, match="has no dependency 'broker'"):
        topo.proxy("sync", "broker")
    with pytest.raises(ConfigError, match="unknown lane"):
        topo.proxy("blue", "email")


def test_stack_settings_round_trip_through_the_stack_file() -> None:
    settings = StackSettings.model_validate({"time_scale": 0.1, "async": {"prefetch": 4}})
    again = Topology.from_json(Topology.from_settings(settings).to_json())
    assert again.settings == settings
    assert again.settings.async_.prefetch == 4


def test_seed_numbers_are_the_defaults() -> None:
    s = StackSettings()
    assert {k: v.latency_ms for k, v in s.chain.items()} == {
        "payment": 400, "inventory": 200, "warehouse": 300, "email": 800, "analytics": 150,
    }  # fmt: skip
    assert sum(v.latency_ms for v in s.chain.values()) == 1850
    assert s.sync.timeout_s == 5.0
    assert s.sync.retry.attempts == 3
    assert [s.sync.retry.backoff_s(i) for i in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert s.deferred == ("inventory", "warehouse", "email", "analytics")
    assert (s.sync.threads, s.sync.queue) == (16, 64)
