"""Made-up ``summary.json`` bodies for the readers' tests: complete where the typed record
(:class:`harness.records.summary.Summary`) needs it, with the figures a test names on top."""

from __future__ import annotations

from typing import Any

from model.validation import overlay

__all__ = ["async_orders", "lane_json", "recovery_json", "summary_json"]


def lane_json(**over: Any) -> dict[str, Any]:
    """A lane's figures: none measured, but for ``over``."""
    base = {
        "requests": 0, "errors": 0, "error_rate": None, "throughput_rps": 0.0,
        "latency_ms": {"p50": None, "p95": None, "p99": None, "max": None},
    }  # fmt: skip
    if "fulfillment_ms" in over:
        base["fulfillment_ms"] = {"p50": None, "p95": None, "p99": None}
    return overlay(base, over)


def async_orders(**over: int) -> dict[str, Any]:
    base = dict.fromkeys(
        (
            "accepted",
            "fulfilled",
            "failed",
            "lost",
            "in_flight",
            "duplicate_side_effects",
            "missing_side_effects",
        ),
        0,
    )
    return {**base, **over}


def recovery_json(lane: str, **over: Any) -> dict[str, Any]:
    """``metastability[lane]``: ``over`` on an entry with no evidence."""
    base = {
        "lane": lane, "trigger": "trigger", "outcome": "undetermined", "recovery_s": None, "reason": None,
        "evidence": None, "recovered": False, "window_s": 30.0, "dipped": None, "dip_reason": None,
    }  # fmt: skip
    return {**base, **over}


def summary_json(**over: Any) -> dict[str, Any]:
    """A run's summary: ``over`` on one with no lanes, verdicts or faults."""
    return overlay(
        {"scenario": "made-up", "time_scale": 1.0, "duration_s": 60.0, "lanes": {}, "passed": True}, over
    )
