"""The panel catalogue, Prometheus' configuration and queries, and a run's counters."""
