"""The run report's charts, drawn as PNG files: the three story charts and the detail panels.

Every chart shares one time axis, 0 to the end of the run, with every fault window shaded; a
chart that has a lane draws the lanes side by side (sync | async) on one y-scale, so the two
compare at a glance.  A chart carries no title: the page captions it once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from harness.analysis.estimates import percentile
from harness.analysis.inputs import Row
from harness.metrics.panels import DASHBOARDS, PANELS, Panel
from harness.records.summary import Summary

__all__ = [
    "Chart",
    "ChartGroup",
    "TimeAxis",
    "detail_charts",
    "finish_axes",
    "save_figure",
    "story_charts",
    "time_axis",
]

LANE_COLOURS = {"sync": "#c0392b", "async": "#2471a3"}
_FAULT_COLOUR = "#f5b041"
_DPI = 80
# Buckets per run: fine enough to see a fault's edges, coarse enough for a percentile per bucket.
_BUCKETS = 120


@dataclass(frozen=True, kw_only=True)
class TimeAxis:
    """The report's one time axis: seconds since the run's t0, from 0 to ``end``."""

    end: float
    faults: tuple[tuple[str, float, float], ...]  # name, start, end

    @cached_property
    def bucket_s(self) -> float:
        """The width of a rate's or a percentile's bucket: 1 s, or more on a long run."""
        return float(max(1, math.ceil(self.end / _BUCKETS)))

    @cached_property
    def buckets(self) -> int:
        return max(1, math.ceil(self.end / self.bucket_s))

    def centres(self) -> list[float]:
        return [(i + 0.5) * self.bucket_s for i in range(self.buckets)]

    def bucket(self, t: float) -> int | None:
        """Called once per request record: no list built here."""
        i = int(t // self.bucket_s)
        return i if 0 <= i < self.buckets else None


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One PNG of the report and the caption the page shows under it."""

    file: str
    title: str
    caption: str = ""
    # "" for lanes side by side; "left" or "right" for one lane's chart, under that lane's side
    # of the paired ones (sync left, async right), or "left" on a system with one lane.
    side: str = ""


@dataclass(frozen=True, kw_only=True)
class ChartGroup:
    """A dashboard's detail panels, in the catalogue's order."""

    title: str
    charts: tuple[Chart, ...]


def time_axis(summary: Summary, rows: Sequence[Row], series: dict[str, Any]) -> TimeAxis:
    """0 to the last thing the run recorded: its load, its last answer or fulfilment, its faults."""
    faults = tuple((f.name, f.start_s, f.end_s) for f in summary.chaos)
    ends = [summary.duration_s, *(r.end for r in rows), *(end for _, _, end in faults)]
    series_end = series.get("end")
    if isinstance(series_end, int | float) and summary.run is not None:
        ends.append(float(series_end) - summary.run.t0)
    return TimeAxis(end=max(1.0, *ends), faults=faults)


def _lanes_figure(lanes: Sequence[str], height: float = 2.6) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, len(lanes), figsize=(6 * len(lanes), height), squeeze=False, sharey=True)
    return fig, list(axes[0])


def finish_axes(ax: Any, axis: TimeAxis, unit: str, title: str | None) -> None:
    for name, start, end in axis.faults:
        ax.axvspan(start, end, color=_FAULT_COLOUR, alpha=0.25)
        # Named on the chart, not in the legend: the lines' legend stays short.
        ax.text(start, 0.98, f" {name}", transform=ax.get_xaxis_transform(), fontsize=7, va="top",
                color="#9c640c", clip_on=True)  # fmt: skip
    ax.set_xlim(0, axis.end)
    ax.set_xlabel("seconds into the run", fontsize=8)
    if unit:
        ax.set_ylabel(unit, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", ncol=2)


def save_figure(fig: Any, run_dir: Path, name: str) -> None:
    for ax in fig.axes:  # once every lane is drawn: the lanes share this scale
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(run_dir / name, dpi=_DPI)
    plt.close(fig)


def _per_bucket(axis: TimeAxis, rows: Sequence[Row], when: Callable[[Row], float]) -> list[float]:
    counts = [0] * len(axis.centres())
    for r in rows:
        i = axis.bucket(when(r))
        if i is not None:
            counts[i] += 1
    return [c / axis.bucket_s for c in counts]


def _quantiles(axis: TimeAxis, rows: Sequence[Row], qs: Sequence[float]) -> list[list[float]]:
    """Per bucket of when each was answered, the ``qs`` quantiles of its latency (nan: none)."""
    buckets: list[list[float]] = [[] for _ in axis.centres()]
    for r in rows:
        i = axis.bucket(r.end)
        if i is not None:
            buckets[i].append(r.latency)
    return [[percentile(b, q) for b in buckets] for q in qs]


def _open_orders(axis: TimeAxis, rows: Sequence[Row], lane: str) -> tuple[list[float], list[float]]:
    """Orders offered and not yet fulfilled, on average over each bucket.

    An order is open from its arrival's intended start until it is fulfilled: on the sync lane
    its checkout's last answer (the answer is the fulfilment, or its failure ends the order);
    on the async lane its followed fulfilment, or its checkout's last answer when it was never
    accepted; an accepted order never seen fulfilled stays open to the end.
    """
    opened: dict[str, float] = {}
    answered: dict[str, tuple[float, bool]] = {}
    fulfilled: dict[str, float] = {}
    for r in rows:
        if r.lane != lane:
            continue
        if r.kind in ("checkout", "dropped"):
            opened[r.order_id] = min(opened.get(r.order_id, r.intended), r.intended)
            last = answered.get(r.order_id)
            if last is None or r.end >= last[0]:
                answered[r.order_id] = (r.end, r.ok and r.kind == "checkout")
        elif r.kind == "fulfillment":
            fulfilled[r.order_id] = r.end
    width = axis.bucket_s
    open_time = [0.0] * len(axis.centres())  # order-seconds open within each bucket
    for order, start in opened.items():
        end, accepted = answered[order]
        if lane == "async" and accepted:
            end = fulfilled.get(order, axis.end)
        start, end = max(0.0, start), min(axis.end, end)
        for i in range(int(start // width), min(len(open_time), math.ceil(end / width))):
            open_time[i] += max(0.0, min(end, (i + 1) * width) - max(start, i * width))
    return axis.centres(), [t / width for t in open_time]


def story_charts(run_dir: Path, lanes: Sequence[str], rows: Sequence[Row], axis: TimeAxis) -> list[Chart]:
    """The first screen's three charts, each the lanes side by side on one y-scale."""
    charts = []
    fig, axes = _lanes_figure(lanes)
    for ax, lane in zip(axes, lanes, strict=True):
        colour = LANE_COLOURS.get(lane, "#333")
        mine = [r for r in rows if r.lane == lane]
        offered = [r for r in mine if r.attempt == 0 and r.kind in ("checkout", "dropped")]
        checkouts = [r for r in mine if r.kind == "checkout"]
        xs = axis.centres()
        ax.plot(xs, _per_bucket(axis, offered, lambda r: r.intended), color="#777", label="offered")
        ax.plot(xs, _per_bucket(axis, [r for r in checkouts if r.ok], lambda r: r.end), color=colour,
                label="answered 2xx")  # fmt: skip
        ax.plot(xs, _per_bucket(axis, [r for r in checkouts if not r.ok], lambda r: r.end), color=colour,
                linestyle=":", label="answered with an error")  # fmt: skip
        finish_axes(ax, axis, "per second", lane)
    save_figure(fig, run_dir, "story-arrivals.png")
    charts.append(
        Chart(
            file="story-arrivals.png",
            title="Arrivals offered and answered per second",
            caption="Offered: the scenario's arrivals (first attempts), by intended start. "
            "Answered: every checkout attempt's answer, by when it came.",
        )
    )
    fig, axes = _lanes_figure(lanes)
    for ax, lane in zip(axes, lanes, strict=True):
        colour = LANE_COLOURS.get(lane, "#333")
        answers = [r for r in rows if r.lane == lane and r.kind == "checkout"]
        p50, p99 = _quantiles(axis, answers, (0.5, 0.99))
        ax.plot(axis.centres(), p50, color=colour, label="p50")
        ax.plot(axis.centres(), p99, color=colour, linestyle="--", label="p99")
        finish_axes(ax, axis, "seconds", lane)
    save_figure(fig, run_dir, "story-latency.png")
    charts.append(
        Chart(
            file="story-latency.png",
            title="Checkout latency from intended start, p50 and p99",
            caption="What the shopper waited, from the arrival's scheduled start (so time queued "
            "in the load generator counts), failures and timeouts too, by when it was answered.",
        )
    )
    fig, axes = _lanes_figure(lanes)
    for ax, lane in zip(axes, lanes, strict=True):
        xs, ys = _open_orders(axis, rows, lane)
        ax.plot(xs, ys, color=LANE_COLOURS.get(lane, "#333"), label="orders not yet fulfilled")
        finish_axes(ax, axis, "orders", lane)
    save_figure(fig, run_dir, "story-backlog.png")
    charts.append(
        Chart(
            file="story-backlog.png",
            title="Orders offered and not yet fulfilled",
            caption=_per_lane(
                lanes,
                sync="an order is in flight in the chain until its checkout answers (its "
                "fulfilment) or fails.",
                async_="from arrival until its shopper saw it fulfilled; an accepted order never "
                "seen fulfilled stays counted to the end.",
            ),
        )
    )
    return charts


def _per_lane(lanes: Sequence[str], *, sync: str, async_: str) -> str:
    """A caption's words for each lane the run has, ``Sync: ... Async: ...``."""
    words = {"sync": sync, "async": async_}
    return " ".join(f"{lane.capitalize()}: {words[lane]}" for lane in lanes if lane in words)


def _lane_of(legend: str, lanes: Sequence[str]) -> tuple[str | None, str]:
    """``("sync", "p95")`` for the legend ``sync p95``; ``(None, legend)`` for one with no lane."""
    first, _, rest = legend.partition(" ")
    return (first, rest) if first in lanes else (None, legend)


def _panel_chart(run_dir: Path, panel: Panel, lines: list[dict[str, Any]], lanes: Sequence[str],
                 axis: TimeAxis, t0: float) -> Chart:  # fmt: skip
    by_lane: dict[str | None, list[tuple[str, list[float], list[float]]]] = {}
    for line in lines[:24]:
        lane, legend = _lane_of(line["legend"], lanes)
        xs = [p[0] - t0 for p in line["points"]]
        ys = [p[1] for p in line["points"]]
        by_lane.setdefault(lane, []).append((legend, xs, ys))
    split = [lane for lane in lanes if lane in by_lane]
    columns: list[str | None] = list(split) if split else [None]
    fig, axes = _lanes_figure([c or "" for c in columns], height=2.4)
    unit = {"s": "seconds", "reqps": "per second"}.get(panel.unit, "")
    for ax, lane in zip(axes, columns, strict=True):
        # A line with no lane (the users panel's count) belongs to every lane's side.
        drawn = by_lane.get(lane, []) + (by_lane.get(None, []) if lane is not None else [])
        for legend, xs, ys in drawn[:12]:
            ax.plot(xs, ys, label=legend or None)  # a lane's only line: its side names it
        finish_axes(ax, axis, unit, lane)
    name = f"panel-{panel.key}.png"
    save_figure(fig, run_dir, name)
    lane = columns[0] if len(columns) == 1 else None
    if lane is None and len(columns) == 1 and panel.dashboard in lanes:
        lane = panel.dashboard  # a lane's own dashboard: its queries name no lane
    return Chart(file=name, title=panel.title, caption=panel.description, side=_side(lane, columns, lanes))


def _side(lane: str | None, columns: Sequence[str | None], lanes: Sequence[str]) -> str:
    if len(columns) > 1:
        return ""
    return "right" if len(lanes) > 1 and lane == lanes[-1] else "left"


def detail_charts(run_dir: Path, lanes: Sequence[str], rows: Sequence[Row], series: dict[str, Any],
                  axis: TimeAxis, t0: float) -> list[ChartGroup]:  # fmt: skip
    """Every report panel with data, grouped by the catalogue's dashboards, lanes side by side;
    first the request log's own time to fulfilment."""
    groups = [
        ChartGroup(title="From the request log", charts=(_fulfilment_chart(run_dir, lanes, rows, axis),))
    ]
    for dashboard, title in DASHBOARDS.items():
        charts = tuple(
            _panel_chart(run_dir, p, series["panels"][p.key], lanes, axis, t0)
            for p in PANELS
            if p.dashboard == dashboard and p.in_report and series.get("panels", {}).get(p.key)
        )
        if charts:
            groups.append(ChartGroup(title=title.removeprefix("doorbuster: "), charts=charts))
    return groups


def _fulfilment_chart(run_dir: Path, lanes: Sequence[str], rows: Sequence[Row], axis: TimeAxis) -> Chart:
    fig, axes = _lanes_figure(lanes, height=2.4)
    for ax, lane in zip(axes, lanes, strict=True):
        kind = "fulfillment" if lane == "async" else "checkout"
        done = [r for r in rows if r.lane == lane and r.kind == kind and r.ok]
        p50, p95 = _quantiles(axis, done, (0.5, 0.95))
        colour = LANE_COLOURS.get(lane, "#333")
        ax.plot(axis.centres(), p50, color=colour, label="p50")
        ax.plot(axis.centres(), p95, color=colour, linestyle="--", label="p95")
        finish_axes(ax, axis, "seconds", lane)
    save_figure(fig, run_dir, "fulfillment.png")
    return Chart(
        file="fulfillment.png",
        title="Time from arrival to fulfilment, p50 and p95, by when it was fulfilled",
        caption=_per_lane(
            lanes,
            sync="a checkout answered 2xx is its fulfilment.",
            async_="the shopper's polling saw the order fulfilled.",
        ),
        side=_side(None, lanes, lanes),
    )
