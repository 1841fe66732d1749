"""The load generator's limits: past any of them in a verdict's window, it was *behind*.

Why each is where it is: :mod:`harness.analysis.generator`, which judges by them.  They are
here, below the harness, so that the panel catalogue (Grafana's and the live view's reference
lines) and the run report's chart draw the very lines the gate judges by.
"""

from __future__ import annotations

__all__ = ["CPU_SHARE_LIMIT", "LOOP_LAG_LIMIT_S", "SEND_LAG_FLOOR_S", "SEND_LAG_LIMIT_S", "SEND_LAG_SHARE"]

SEND_LAG_FLOOR_S = 0.025  # a latency bound's send-lag limit is never below this
SEND_LAG_SHARE = 0.10  # ... and otherwise this share of the bound
SEND_LAG_LIMIT_S = 0.25  # the send-lag limit of a verdict not on a latency
LOOP_LAG_LIMIT_S = 0.1  # the event loop's lag, in most of a window's seconds
CPU_SHARE_LIMIT = 0.9  # a generator process's CPU share, on average over a window
