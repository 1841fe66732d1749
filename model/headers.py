"""HTTP headers that the load generators, the control plane and the targets agree on."""

from __future__ import annotations

__all__ = ["DEADLINE_HEADER"]

# The caller's remaining time in milliseconds, relative so no clock sync is needed (gRPC's
# ``grpc-timeout`` is the model).  A request's deadline is its arrival plus this.
DEADLINE_HEADER = "X-Deadline-Ms"
