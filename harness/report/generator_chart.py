"""The run report's generator-health chart: was the load generator keeping its schedule?

One figure of four panels on the report's time axis (run seconds, fault windows shaded), a
line per generator process: the send lag p99 of its arrivals, its event loop's lag, its CPU
share, and its arrivals due and not sent.  Each panel draws the limit the verdicts' gate judges
by (:mod:`harness.analysis.generator`) as a reference line, so a verdict undetermined because
of the generator can be read off the chart.  The data are ``generator.jsonl``'s samples, each
exact, bucketed like the other charts; a run directory written before that file existed gets
no chart, and the page says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from harness.analysis.generator import (
    CPU_SHARE_LIMIT,
    LOOP_LAG_LIMIT_S,
    SEND_LAG_FLOOR_S,
    SEND_LAG_LIMIT_S,
    SEND_LAG_SHARE,
)
from harness.records.generator import GeneratorSample, read_generator_samples
from harness.records.run_dir import GENERATOR_FILE
from harness.records.summary import Summary
from harness.report.charts import Chart, TimeAxis, finish_axes, save_figure

__all__ = ["GENERATOR_CHART", "Facet", "GeneratorPart", "generator_facets", "generator_part"]

GENERATOR_CHART = "generator.png"
_WORKER_COLOURS = ("#6c3483", "#117a65", "#b9770e", "#2e4053", "#a93226", "#1f618d", "#7d6608", "#4d5656")
_LIMIT_COLOUR = "#c0392b"


@dataclass(frozen=True, kw_only=True)
class Facet:
    """One panel of the chart: a line per generator process, one value per bucket of the time
    axis (nan: no sample there), and the gate's limits as ``(value, label)``."""

    title: str
    unit: str
    lines: dict[str, tuple[float, ...]]  # worker -> values
    limits: tuple[tuple[float, str], ...] = ()
    # worker -> (run second, count): arrivals never sent, marked where its load stopped
    marks: dict[str, tuple[float, int]] | None = None
    least_top: float = 0.0  # a count's axis reaches 1 at least: none late is a line at 0, not 0.05


@dataclass(frozen=True, kw_only=True)
class GeneratorPart:
    """The report's section on the load generator: its chart, or why there is none, and the
    summary's windows where it was behind."""

    chart: Chart | None
    missing: str  # why there is no chart; "" when there is
    behind: tuple[str, ...]


def _bucketed(
    samples: Sequence[GeneratorSample],
    t0: float,
    axis: TimeAxis,
    value: Callable[[Sequence[tuple[GeneratorSample, float]]], float],
) -> tuple[float, ...]:
    """``value`` of the samples whose window overlaps each bucket, each with the seconds it
    overlaps (nan: none).  A process's windows follow one another, so a sample a little late
    leaves no bucket empty, and a bucket's worst second is not averaged away."""
    buckets: list[list[tuple[GeneratorSample, float]]] = [[] for _ in axis.centres()]
    width = axis.bucket_s
    for s in samples:
        start, end = s.t - t0 - s.window_s, s.t - t0
        for i in range(max(0, int(start // width)), min(len(buckets), math.ceil(end / width))):
            overlap = min(end, (i + 1) * width) - max(start, i * width)
            if overlap > 0:
                buckets[i].append((s, overlap))
    return tuple(value(b) if b else math.nan for b in buckets)


def _send_lag(samples: Sequence[tuple[GeneratorSample, float]]) -> float:
    # No window of the bucket has a p99 above the largest of theirs: an upper bound, not a guess.
    lags = [s.send_lag_p99_s for s, _ in samples if s.send_lag_p99_s is not None]
    return max(lags) if lags else math.nan


def _loop_lag(samples: Sequence[tuple[GeneratorSample, float]]) -> float:
    return max(s.loop_lag_max_s for s, _ in samples)


def _cpu(samples: Sequence[tuple[GeneratorSample, float]]) -> float:
    return sum(s.cpu_share * seconds for s, seconds in samples) / sum(seconds for _, seconds in samples)


def _late(samples: Sequence[tuple[GeneratorSample, float]]) -> float:
    last = max((s for s, _ in samples), key=lambda s: s.t)
    return float(max(0, last.due - last.sent - last.dropped))


def generator_facets(samples: Sequence[GeneratorSample], t0: float, axis: TimeAxis) -> tuple[Facet, ...]:
    """The chart's four panels from ``generator.jsonl``'s samples (epoch times; ``t0`` the run's)."""
    workers = sorted({s.worker for s in samples})
    mine = {w: sorted((s for s in samples if s.worker == w), key=lambda s: s.t) for w in workers}

    def lines(
        value: Callable[[Sequence[tuple[GeneratorSample, float]]], float],
    ) -> dict[str, tuple[float, ...]]:
        return {w: _bucketed(mine[w], t0, axis, value) for w in workers}

    marks = {
        w: (last.t - t0, last.never_sent)
        for w in workers
        for last in [next((s for s in reversed(mine[w]) if s.stopped), None)]
        if last is not None and last.never_sent
    }
    return (
        Facet(
            title="send lag p99 (start - intended start)",
            unit="seconds",
            lines=lines(_send_lag),
            limits=(
                (SEND_LAG_LIMIT_S, f"limit of a verdict not on a latency, {SEND_LAG_LIMIT_S * 1000:.0f} ms"),
                (SEND_LAG_FLOOR_S, f"least limit of a latency verdict, {SEND_LAG_FLOOR_S * 1000:.0f} ms"),
            ),
        ),
        Facet(
            title="event loop lag (most a 100 ms timer fired late)",
            unit="seconds",
            lines=lines(_loop_lag),
            limits=((LOOP_LAG_LIMIT_S, f"limit, {LOOP_LAG_LIMIT_S * 1000:.0f} ms"),),
        ),
        Facet(
            title="CPU share of one core",
            unit="share",
            lines=lines(_cpu),
            limits=((CPU_SHARE_LIMIT, f"limit, {CPU_SHARE_LIMIT:.0%}"),),
        ),
        Facet(
            title="arrivals due, not sent (late; never sent: marked)",
            unit="arrivals",
            lines=lines(_late),
            marks=marks,
            least_top=1.0,
        ),
    )


def _draw(run_dir: Path, facets: Sequence[Facet], axis: TimeAxis) -> None:
    # One figure for every process and panel: matplotlib costs seconds a figure.
    fig, grid = plt.subplots(2, 2, figsize=(12, 4.8), squeeze=False, sharex=True)
    axes: list[Any] = [ax for row in grid for ax in row]
    for ax, facet in zip(axes, facets, strict=True):
        for i, (worker, values) in enumerate(facet.lines.items()):
            colour = _WORKER_COLOURS[i % len(_WORKER_COLOURS)]
            ax.plot(axis.centres(), values, color=colour, label=f"generator {worker}")
            mark = (facet.marks or {}).get(worker)
            if mark is not None:
                ax.plot([mark[0]], [mark[1]], marker="X", markersize=9, color=colour, linestyle="none",
                        label=f"generator {worker} never sent {mark[1]}")  # fmt: skip
        for j, (value, label) in enumerate(facet.limits):
            ax.axhline(
                value, color=_LIMIT_COLOUR, linestyle="--" if j == 0 else ":", linewidth=1, label=label
            )
        finish_axes(ax, axis, facet.unit, facet.title)
        ax.set_ylim(top=max(facet.least_top, ax.get_ylim()[1]))
    save_figure(fig, run_dir, GENERATOR_CHART)


def _behind(summary: Summary) -> tuple[str, ...]:
    """``baseline 0-10 s: reasons`` for each window of the summary where the generator was behind."""
    windows = summary.generator.windows if summary.generator is not None else ()
    return tuple(f"{w.name} {w.start_s:g}-{w.end_s:g} s: {'; '.join(w.behind)}" for w in windows if w.behind)


def generator_part(run_dir: Path, summary: Summary, t0: float, axis: TimeAxis) -> GeneratorPart:
    """The chart drawn from ``run_dir``'s ``generator.jsonl``, or why it is not drawn."""
    path = run_dir / GENERATOR_FILE
    behind = _behind(summary)
    if not path.is_file():
        return GeneratorPart(
            chart=None,
            missing=f"No generator-health chart: this run directory has no {GENERATOR_FILE} "
            "(a run made before doorbuster measured its load generator).",
            behind=behind,
        )
    samples = read_generator_samples(path)
    if not samples:
        return GeneratorPart(
            chart=None,
            missing=f"No generator-health chart: {GENERATOR_FILE} has no sample (the load never started).",
            behind=behind,
        )
    _draw(run_dir, generator_facets(samples, t0, axis), axis)
    chart = Chart(
        file=GENERATOR_CHART,
        title="The load generator's health, per generator process",
        caption="A verdict is undetermined when, over its window, the send lag at the quantile it "
        f"judges passes its limit (max({SEND_LAG_FLOOR_S * 1000:.0f} ms, {SEND_LAG_SHARE:.0%} of a "
        f"latency bound); {SEND_LAG_LIMIT_S * 1000:.0f} ms for any other verdict), the event loop lag "
        "passes its line in most seconds, the CPU share is at its line on average, or an arrival "
        "was never sent. Red lines: those limits. What the run measured there is the generator, "
        "not the system.",
    )
    return GeneratorPart(chart=chart, missing="", behind=behind)
