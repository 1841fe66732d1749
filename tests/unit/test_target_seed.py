"""A run's seed sent to the targets: a target that does not take it stops the run, named."""

from __future__ import annotations

import pytest

from harness.stack.target_seed import seed_targets
from model.errors import EnvironmentProblem
from model.settings import PortSettings, StackSettings
from model.topology import Topology


def test_a_target_that_does_not_answer_stops_the_run_naming_it() -> None:
    # Ports no stack of this project's uses (its stacks, tests and benches keep to others).
    topology = Topology.from_settings(StackSettings(ports=PortSettings(base=30500)))
    first = next(spec for spec in topology.processes if spec.kind in ("downstream", "order", "worker"))
    with pytest.raises(EnvironmentProblem, match=f"{first.name} at {first.endpoint.url}/admin/seed "):
        seed_targets(topology, 7, timeout_s=1)
