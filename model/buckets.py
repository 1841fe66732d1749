"""Histogram bucket edges shared by the targets' metrics and the load generators' records."""

from __future__ import annotations

__all__ = ["LATENCY_BUCKETS", "SEND_LAG_BUCKETS"]

# Edges at the seed's latencies (150/200/300/400/800 ms, the 1.85 s chain), at the 5 s timeout
# and at what 3 timed-out attempts plus back-off cost (15.3 s), so a quantile never hides
# between two far-apart buckets exactly where the story happens.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5,
    1.85, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 10.0, 15.3, 20.0, 30.0, 60.0,
)  # fmt: skip

# A generator's send lag (start - intended start): sub-millisecond when it keeps up, so fine
# edges there; seconds when it is saturated (a 2-core machine at 5,000 arrivals/s: p99 2.3 s).
SEND_LAG_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
