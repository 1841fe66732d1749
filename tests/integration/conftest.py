"""Real stacks for the integration tests: real Toxiproxy, real brokers, real processes.

The seed's stack runs on its own ports (base 23000, Toxiproxy API 23474), each broker's stack
on others (base 28000, Toxiproxy API 28474), each with its own state directory, so they never
meet a stack a developer has running; each is started once a session and always stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.faults.chaos import Chaos
from harness.metrics.scrape import scrape
from harness.stack.control import Stack
from harness.stack.state import StateDir
from model.settings import BROKERS, PortSettings, StackSettings
from model.topology import Topology

BASE_PORT = 23000
TOXIPROXY_PORT = 23474
BROKER_STACK_PORTS = PortSettings(base=28000, toxiproxy_api=28474)


@dataclass(frozen=True)
class RunningStack:
    stack: Stack
    topology: Topology
    chaos: Chaos
    state_dir: Path

    def url(self, lane: str) -> str:
        return self.topology.order_service(lane).url

    def metric(self, process: str, name: str, **labels: str) -> float:
        """One sample of a process's metrics page, summed over label sets that match (the
        reader's rule for a missing metric: :mod:`harness.metrics.scrape`)."""
        return scrape(self.topology.process(process)).value(name, **labels)


def stack_settings(**overrides: object) -> StackSettings:
    return StackSettings.model_validate(
        {
            "ports": PortSettings(base=BASE_PORT, toxiproxy_api=TOXIPROXY_PORT).model_dump(),
            **overrides,
        }
    )


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    state_dir = tmp_path_factory.mktemp("stack")
    stack = Stack(StateDir(state_dir))
    # The seed's real latencies (time_scale 1): these tests check the seed's own numbers.
    topology = stack.up(stack_settings(), timeout_s=120)
    try:
        yield RunningStack(stack=stack, topology=topology, chaos=Chaos(topology), state_dir=state_dir)
    finally:
        stack.down()


@pytest.fixture(scope="module", params=BROKERS)
def broker_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    """A whole stack on each broker (time scale 0.2), the broker's connection crossing Toxiproxy
    like every other hop.  One a module and broker: pytest runs a module's tests of one broker
    before it starts the next broker's stack.  Not one a session: the last broker's stack would
    then run beside every later test, and three stacks on two cores slowed the async lane of
    test_claims' time-scaled runs past their recovery bound (a clean clone, 2026-12-07)."""
    state_dir: Path = tmp_path_factory.mktemp(f"stack-{request.param}")
    stack = Stack(StateDir(state_dir))
    settings = StackSettings(broker=request.param, time_scale=0.2, ports=BROKER_STACK_PORTS)
    topology = stack.up(settings, timeout_s=180)
    try:
        yield RunningStack(stack=stack, topology=topology, chaos=Chaos(topology), state_dir=state_dir)
    finally:
        stack.down()


@pytest.fixture
def stack(running: RunningStack) -> Iterator[RunningStack]:
    """The shared stack with no fault before or after the test."""
    running.chaos.reset()
    try:
        yield running
    finally:
        running.chaos.reset()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
