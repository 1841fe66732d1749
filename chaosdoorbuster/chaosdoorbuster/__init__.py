"""doorbuster's Chaos Toolkit extension: faults on a running doorbuster stack, and probes of it.

Activities (``type: python`` providers, ``module: chaosdoorbuster.actions`` or
``chaosdoorbuster.probes``) take plain JSON arguments and find the stack as the CLI does
(``DOORBUSTER_STATE_DIR``, else the default state directory), or from the experiment's
configuration key ``doorbuster_state_dir``.

- actions: :func:`~chaosdoorbuster.actions.add_fault` (for a duration, removed when it is over
  even if the experiment dies), :func:`~chaosdoorbuster.actions.remove_faults` (for rollbacks);
- probes: :func:`~chaosdoorbuster.probes.probe_lane` (bounded real orders on loopback),
  :func:`~chaosdoorbuster.probes.lane_figures` (the lane's last seconds from Prometheus),
  :func:`~chaosdoorbuster.probes.active_faults`, :func:`~chaosdoorbuster.probes.run_verdicts`.

Bad arguments raise chaoslib's ``InvalidActivity``, a stack that can not do it
``ActivityFailed``, each with a message that names the argument or the problem.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "discover", "load_exported_activities"]
__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """What ``chaos discover chaosdoorbuster`` reports: this extension's activities."""
    from chaoslib.discovery.discover import initialize_discovery_result

    discovery: dict[str, Any] = initialize_discovery_result("chaosdoorbuster", __version__, "doorbuster")
    discovery["activities"].extend(load_exported_activities())
    return discovery


def load_exported_activities() -> list[dict[str, Any]]:
    """Every action and probe, as chaoslib describes them (name, arguments, doc)."""
    from chaoslib.discovery.discover import discover_actions, discover_probes

    activities: list[dict[str, Any]] = []
    activities.extend(discover_actions("chaosdoorbuster.actions"))
    activities.extend(discover_probes("chaosdoorbuster.probes"))
    return activities
