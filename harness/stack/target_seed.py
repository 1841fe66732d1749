"""A run's seed, sent to every target process of the stack before the run's load starts.

The stack outlives runs (``doorbuster up`` once, then runs with different seeds), so the seed
is not one of the settings a target starts with: each run sends its own to each target's
``PUT /admin/seed`` (:data:`model.target_config.TARGET_SEED_PATH`), and the target reseeds
every random stream it draws from (retry jitter, the adaptive throttle, a downstream's
service times and HTTP faults), each derived from (seed, process name, purpose).

A system of the user's (``system:`` with services of its own) has no such endpoint: its
randomness is its own, and nothing is sent.
"""

from __future__ import annotations

import requests

from model.errors import EnvironmentProblem
from model.target_config import TARGET_ROLES, TARGET_SEED_PATH
from model.topology import Topology

__all__ = ["seed_targets"]


def seed_targets(topology: Topology, seed: int, *, timeout_s: float = 5.0) -> tuple[str, ...]:
    """Send ``seed`` to every target process of ``topology``; the names of those seeded.
    A target that does not take it is an :class:`EnvironmentProblem` (exit 3): a run would
    otherwise claim a seed its targets never drew from."""
    seeded: list[str] = []
    for spec in topology.processes:
        if spec.kind not in TARGET_ROLES:
            continue
        url = f"{spec.endpoint.url}{TARGET_SEED_PATH}"
        try:
            response = requests.put(url, json={"seed": seed}, timeout=timeout_s)
            response.raise_for_status()
            answered = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise EnvironmentProblem(f"{spec.name} at {url} did not take the run's seed: {exc}") from exc
        if answered.get("seed") != seed:
            raise EnvironmentProblem(f"{spec.name} at {url} answered {answered}, not seed {seed}")
        seeded.append(spec.name)
    return tuple(seeded)
