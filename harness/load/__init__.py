"""The load generator's parts: arrival times, latency histograms, Locust's process group."""
