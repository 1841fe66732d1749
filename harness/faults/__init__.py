"""Faults: Toxiproxy's API, faults applied and removed, who holds each, and the chaos timeline."""
