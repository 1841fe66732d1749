"""Real stacks for the integration tests: real Toxiproxy, real brokers, real processes.

The seed's stack runs on its own ports (base 23000, Toxiproxy API 23474), each broker's stack
on others (base 28000, Toxiproxy API 28474), each with its own state directory, so they never
meet a stack a developer has running; at most one of them runs at a time (OneStackAtATime).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
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


class OneStackAtATime:
    """The stacks tests share (the seed's, each broker's), at most one running at a time.

    A stack idle beside a time-scaled run slows that run's system (three stacks on two cores
    once slowed test_claims' async lane past its recovery bound), so the tests that share a
    stack run together (``pytest_collection_modifyitems`` below; pytest groups a session-scoped
    parameter's tests by broker), the next key stops the previous stack, and the last test to
    need one stops it (``pytest_runtest_teardown``).  A shared stack that restarted in between is
    an error, never restarted silently: a test would see another stack than the one before.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._running: RunningStack | None = None
        self._supervisor: int | None = None

    def get(self, key: str, start: Callable[[], RunningStack]) -> RunningStack:
        if self._key == key and self._running is not None:
            pid = self._running.stack.supervisor_pid()
            assert pid == self._supervisor, (
                f"the shared {key} stack's supervisor changed: {self._supervisor} -> {pid}"
            )
            return self._running
        self.stop()
        self._running = start()
        self._key, self._supervisor = key, self._running.stack.supervisor_pid()
        return self._running

    def stop(self) -> None:
        running, self._running, self._key = self._running, None, None
        if running is not None:
            running.stack.down()


SHARED_STACK_FIXTURES = frozenset({"running", "broker_stack"})
_SHARED = OneStackAtATime()


def _start(state_dir: Path, settings: StackSettings, timeout_s: float) -> RunningStack:
    stack = Stack(StateDir(state_dir))
    topology = stack.up(settings, timeout_s=timeout_s)
    return RunningStack(stack=stack, topology=topology, chaos=Chaos(topology), state_dir=state_dir)


@pytest.fixture(scope="session")
def shared_stacks() -> Iterator[OneStackAtATime]:
    try:
        yield _SHARED
    finally:
        _SHARED.stop()


@pytest.fixture
def running(shared_stacks: OneStackAtATime, tmp_path_factory: pytest.TempPathFactory) -> RunningStack:
    """The seed's stack at its real latencies (time_scale 1): these tests check the seed's own
    numbers."""
    return shared_stacks.get("seed", lambda: _start(tmp_path_factory.mktemp("stack"), stack_settings(), 120))


@pytest.fixture(scope="session", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    """Session-scoped, so pytest runs every module's tests of one broker before the next's."""
    return str(request.param)


@pytest.fixture
def broker_stack(
    broker: str, shared_stacks: OneStackAtATime, tmp_path_factory: pytest.TempPathFactory
) -> RunningStack:
    """A whole stack on each broker (time scale 0.2), the broker's connection crossing Toxiproxy
    like every other hop; one a broker for the session, shared by every module that asks."""
    settings = StackSettings.model_validate(
        {"broker": broker, "time_scale": 0.2, "ports": BROKER_STACK_PORTS.model_dump()}
    )
    return shared_stacks.get(
        broker, lambda: _start(tmp_path_factory.mktemp(f"stack-{broker}"), settings, 180)
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the seed's stack first, then those on a broker's stack (pytest has grouped
    them by broker already: the sort is stable), then those that start stacks of their own."""

    def group(item: pytest.Item) -> int:
        names = set(getattr(item, "fixturenames", ()))
        return 0 if "running" in names else 1 if "broker_stack" in names else 2

    integration = [item for item in items if "integration" in item.nodeid.split("::")[0]]
    others = [item for item in items if "integration" not in item.nodeid.split("::")[0]]
    items[:] = [*others, *sorted(integration, key=group)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the test's own fixtures have torn down: the shared stack stops when the next test
    does not use one."""
    try:
        return (yield)
    finally:
        if nextitem is None or not SHARED_STACK_FIXTURES & set(getattr(nextitem, "fixturenames", ())):
            _SHARED.stop()


@pytest.fixture(scope="module")
def trivial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bench/trivial (Go, answers at once), built here and pinned to core 1; its base URL."""
    from tests.integration.short_run import trivial_endpoint  # it imports this module's RunningStack

    with trivial_endpoint(tmp_path_factory.mktemp("trivial"), core=1) as url:
        yield url


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
