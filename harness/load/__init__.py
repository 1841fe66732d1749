"""The load generator's parts: its settings, arrival times and schedule, journeys, request log,
latency histograms, exporter, and Locust's process group (none imports Locust but that one,
which starts it as a subprocess; ``locustfiles/shoppers.py`` is the Locust glue)."""
