"""The targets' random draws come from streams seeded from the run's seed: the same seed draws
the same retry jitter and downstream jitter, another seed others, and ``PUT /admin/seed``
reseeds the very generators a process's retries draw from."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from model.settings import BreakerSettings, DependencySettings, StackSettings, SyncRetrySettings
from model.target_config import TARGET_SEED_PATH, resolve_target_config
from model.topology import Topology
from targets.downstream import SERVICE_KEY, DownstreamService, HttpFaults, build_downstream_app
from targets.metrics import DownstreamServerMetrics
from targets.random_streams import RandomStreams, stream_seed
from targets.resilience import CircuitBreaker, DependencyRetryPolicy
from targets.sync_lane import SYNC_KEY, build_sync_app

JITTERED = SyncRetrySettings(policy="full_jitter")


def _jitter(policy: DependencyRetryPolicy, draws: int = 20) -> list[float]:
    """What the policy waits after each of ``draws`` failed attempts (1, 2, 1, 2, ...)."""
    return [policy.backoff_s(1 + i % 2) for i in range(draws)]


def _policy(streams: RandomStreams, dependency: str = "payment") -> DependencyRetryPolicy:
    return DependencyRetryPolicy(
        JITTERED,
        CircuitBreaker(BreakerSettings()),
        rng=streams.stream(f"retry/{dependency}"),
        throttle_rng=streams.stream(f"throttle/{dependency}"),
    )


def test_the_same_seed_draws_the_same_retry_jitter_and_another_seed_other_jitter() -> None:
    first = _jitter(_policy(RandomStreams("order-sync", seed=7)))
    again = _jitter(_policy(RandomStreams("order-sync", seed=7)))
    other = _jitter(_policy(RandomStreams("order-sync", seed=8)))
    assert first == again
    assert other != first
    assert len(set(first)) == len(first)  # jittered: no two waits alike
    assert all(0 <= wait <= 0.1 for wait in first[::2]) and all(0 <= wait <= 0.2 for wait in first[1::2])


def test_each_process_and_each_dependency_draws_a_stream_of_its_own() -> None:
    streams = RandomStreams("order-sync", seed=7)
    payment, email = _jitter(_policy(streams, "payment")), _jitter(_policy(streams, "email"))
    elsewhere = _jitter(_policy(RandomStreams("order-async", seed=7)))
    assert payment != email
    assert payment != elsewhere
    assert stream_seed(7, "order-sync", "retry/payment") != stream_seed(7, "order-async", "retry/payment")


def test_reseeding_restarts_every_stream_in_place() -> None:
    streams = RandomStreams("order-sync", seed=1)
    policy = _policy(streams)
    _jitter(policy, 5)  # draws made under the process's first seed
    streams.reseed(7)
    assert streams.seed == 7
    assert _jitter(policy) == _jitter(_policy(RandomStreams("order-sync", seed=7)))


def _downstream(rng_seed: int) -> DownstreamService:
    service = DownstreamService(
        lane="sync", dependency="payment", settings=DependencySettings(latency_ms=100, spread=0.5),
        time_scale=1.0, metrics=DownstreamServerMetrics(CollectorRegistry()),
        rng=RandomStreams("downstream-sync-payment", seed=rng_seed).stream("work"),
    )  # fmt: skip
    service.faults = HttpFaults(extra_latency_ms=10, extra_jitter_ms=50)
    return service


def test_the_same_seed_draws_the_same_downstream_service_times_and_extra_jitter() -> None:
    def times(seed: int) -> list[float]:
        service = _downstream(seed)
        return [service.work_seconds() for _ in range(20)]

    assert times(7) == times(7)
    assert times(8) != times(7)


async def test_admin_seed_reseeds_the_streams_the_sync_lanes_retries_draw_from() -> None:
    topology = Topology.from_settings(
        StackSettings.model_validate({"sync": {"retry": {"policy": "full_jitter"}}})
    )
    config = resolve_target_config(topology, topology.process("order-sync"), data_dir=Path("."))
    app = build_sync_app(config=config, registry=CollectorRegistry())
    async with TestClient(TestServer(app)) as client:
        assert (await (await client.get(TARGET_SEED_PATH)).json()) == {"process": "order-sync", "seed": 0}
        answer = await client.put(TARGET_SEED_PATH, json={"seed": 7})
        assert answer.status == 200
        assert await answer.json() == {"process": "order-sync", "seed": 7}
        policy = client.app[SYNC_KEY].client.policies["payment"]
        assert _jitter(policy) == _jitter(_policy(RandomStreams("order-sync", seed=7)))
        for bad in ({"seed": -1}, {"seed": 2**63}, {"seed": "7"}, {"seed": True}, {"seed": 7, "x": 1}, {}):
            refused = await client.put(TARGET_SEED_PATH, json=bad)
            assert refused.status == 422, bad
        assert (await (await client.get(TARGET_SEED_PATH)).json())["seed"] == 7


async def test_admin_seed_reseeds_a_downstreams_service_times() -> None:
    settings = DependencySettings(latency_ms=100, spread=0.5)
    app = build_downstream_app(
        lane="sync", dependency="payment", settings=settings, time_scale=1.0, registry=CollectorRegistry()
    )
    async with TestClient(TestServer(app)) as client:
        assert (await client.put(TARGET_SEED_PATH, json={"seed": 7})).status == 200
        service = client.app[SERVICE_KEY]
        service.faults = HttpFaults(extra_latency_ms=10, extra_jitter_ms=50)
        drawn = [service.work_seconds() for _ in range(20)]
    expected = _downstream(7)
    assert drawn == [expected.work_seconds() for _ in range(20)]
