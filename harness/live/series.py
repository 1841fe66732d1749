"""The live view's charts, from the panel catalogue: how each panel is laid out by lane, and its
series over a recent window, queried server-side from the stack's Prometheus.

Only the catalogue's queries are ever sent (:mod:`harness.metrics.panels`); the page names a panel by
its key and a window in seconds, never PromQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from harness.metrics.panels import Panel
from model.topology import LANES

__all__ = [
    "MAX_RANGE_S",
    "MIN_RANGE_S",
    "ChartSeries",
    "PanelLayout",
    "SeriesSource",
    "fault_windows",
    "layout_of",
    "panel_series",
]

MIN_RANGE_S = 10
MAX_RANGE_S = 3600
_MAX_POINTS = 300  # per series: a step of range / 300, at least Prometheus' 1 s scrape


class SeriesSource(Protocol):
    """Prometheus' range queries (:class:`harness.metrics.prometheus.PrometheusClient`)."""

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, kw_only=True)
class PanelLayout:
    """A panel on the page: one chart per lane (``split``), or one in its own lane's column
    (``lane``), or one across the page (neither)."""

    key: str
    title: str
    unit: str
    split: bool
    lane: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "split": self.split,
            "lane": self.lane,
        }


def layout_of(panel: Panel) -> PanelLayout:
    """A panel whose legends name the lane has a series per lane: a chart per lane, side by
    side; one of a lane's own dashboard (the sync pool, the async backlog) sits in that lane."""
    split = any("lane" in q.legend_labels for q in panel.queries)
    lane = None if split or panel.dashboard not in LANES else panel.dashboard
    return PanelLayout(key=panel.key, title=panel.title, unit=panel.unit, split=split, lane=lane)


@dataclass(frozen=True, kw_only=True)
class ChartSeries:
    lane: str | None  # None: a series of no one lane (drawn in each lane's chart of the panel)
    label: str
    values: tuple[float | None, ...]  # one per step of the window; None where Prometheus has none

    @property
    def points(self) -> int:
        return sum(v is not None for v in self.values)

    def as_json(self) -> dict[str, Any]:
        return {"lane": self.lane, "label": self.label, "values": list(self.values), "points": self.points}


def window(range_s: float, now: float) -> tuple[float, float, float]:
    """(start, end, step) of the last ``range_s`` seconds, aligned to the step."""
    step = max(1.0, math.ceil(range_s / _MAX_POINTS))
    end = math.floor(now / step) * step
    return end - range_s, end, step


def panel_series(source: SeriesSource, panel: Panel, range_s: float, now: float) -> dict[str, Any]:
    """Every series of ``panel`` over the last ``range_s`` seconds, on one time axis."""
    start, end, step = window(range_s, now)
    times = [start + i * step for i in range(int((end - start) / step) + 1)]
    index = {round(t, 3): i for i, t in enumerate(times)}
    series: list[ChartSeries] = []
    for query in panel.queries:
        for result in source.query_range(query.expr, start, end, step):
            labels = {str(k): str(v) for k, v in result.get("metric", {}).items()}
            values: list[float | None] = [None] * len(times)
            for t, raw in result.get("values", []):
                i = index.get(round(float(t), 3))
                value = float(raw)
                if i is not None and math.isfinite(value):
                    values[i] = value
            series.append(
                ChartSeries(
                    lane=labels.get("lane"),
                    # A legend whose every label is missing would leave the series unnamed here.
                    label=query.legend_for(labels).strip() or "value",
                    values=tuple(values),
                )
            )
    return {
        "panel": panel.key,
        "times": times,
        "series": [s.as_json() for s in series],
    }


def fault_windows(times: list[float], series: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Per lane, the spans where a fault series was above 0 (the page shades them)."""
    windows: dict[str, list[tuple[float, float]]] = {}
    for s in series:
        lane = s.get("lane") or "*"
        start: float | None = None
        for t, v in zip(times, s["values"], strict=True):
            if v is not None and v > 0 and start is None:
                start = t
            elif (v is None or v <= 0) and start is not None:
                windows.setdefault(lane, []).append((start, t))
                start = None
        if start is not None:
            windows.setdefault(lane, []).append((start, times[-1]))
    return windows
