"""A fault held for a while and then removed: ``doorbuster toxic add --for`` and the Chaos
Toolkit extension's fault holder (``chaosdoorbuster.holder``) both hold one this way.

The fault is applied under a lease of its own (:class:`~harness.faults.leases.FaultLease`),
waited out in steps of at most a second (a signal's handler runs within one), and removed by
:meth:`FaultHold.release`, which the caller runs in ``finally``.  The lease is closed only once
the fault is gone: if removing fails, the lease of this (by then dead) process leads the next
doorbuster command to remove it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.faults.actions import add_held
from harness.faults.chaos import ActiveFault, Chaos
from harness.faults.leases import FaultLease
from model.faults import FaultSpec

__all__ = ["FaultHold"]

# The longest single sleep while holding: how late a signal's handler may run.
_STEP_S = 1.0


class FaultHold:
    """One fault, validated, held under ``lease`` from :meth:`apply` to :meth:`release`."""

    def __init__(
        self,
        chaos: Chaos,
        spec: FaultSpec,
        lease: FaultLease,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chaos = chaos
        self.spec = spec
        self.lease = lease
        self._clock = clock
        self._sleep = sleep

    def apply(self) -> list[ActiveFault]:
        """Apply the fault; if that fails, the lease does not claim it (and nothing is held)."""
        return add_held(self.chaos, self.spec, self.lease, by=None)

    def wait(self, duration_s: float) -> None:
        """Wait ``duration_s``; an exception a signal raises (Ctrl-C) ends it early."""
        deadline = self._clock() + duration_s
        while (left := deadline - self._clock()) > 0:
            self._sleep(min(left, _STEP_S))

    def release(self) -> int:
        """Remove the fault, then close the lease; how many faults were removed."""
        removed = self.chaos.remove(self.spec.dependency, self.spec.lanes, self.spec.fault_name)
        self.lease.close()
        return removed
