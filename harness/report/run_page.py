"""The run report: ``report.html`` with PNG plots, built from a run directory alone.

``doorbuster report RUN_DIR`` rebuilds it from the files a run wrote (``summary.json``,
``series.json``, ``requests.jsonl``, ``scenario.json``), so a report can be regenerated on
any machine, long after the stack is gone.  Client-side plots come from the request log;
server-side plots come from the panel definitions' series, the same queries the Grafana
dashboards show.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2

from harness.analysis.generator import blames_generator
from harness.analysis.inputs import Row
from harness.config.files import read_json, read_json_lines
from harness.records.schema import RequestRecord
from harness.records.summary import LadderRung, Summary, read_summary
from harness.report.charts import detail_charts, story_charts, time_axis
from harness.report.generator_chart import generator_part
from harness.report.parts import OUTCOME_WORDS, STYLE, run_status
from harness.report.shootout import read_shootout, write_shootout
from model.errors import ConfigError

__all__ = ["write_report"]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _load(run_dir: Path) -> tuple[Summary, dict[str, Any], list[Row]]:
    if not (run_dir / "summary.json").exists():
        raise ConfigError(f"{run_dir} has no summary.json: not a doorbuster run directory")
    summary = read_summary(run_dir / "summary.json")
    series: Any = {"panels": {}}
    if (run_dir / "series.json").exists():
        series = read_json(run_dir / "series.json")
        if not _is_series(series):
            raise ConfigError(
                f"{run_dir / 'series.json'}: expected a JSON object whose 'panels' maps each panel to "
                "a list of {legend, points: [[time, value], ...]}"
            )
    rows: list[Row] = []
    t0 = summary.run.t0 if summary.run is not None else None
    if t0 is None or not math.isfinite(t0):
        raise ConfigError(f"{run_dir / 'summary.json'}: expected t0, the run's start, as a number")
    if (run_dir / "requests.jsonl").exists():
        rows = read_json_lines(
            run_dir / "requests.jsonl", lambda raw: _request(raw, t0), what="a request record"
        )
    return summary, series, rows


# The plots bucket requests by their time since t0: a record further from it is not this run's.
_RUN_SPAN_S = 30 * 86400


def _request(raw: Any, t0: float) -> Row:
    row = Row.from_record(RequestRecord.from_json(raw), t0)
    if not all(math.isfinite(t) and abs(t) <= _RUN_SPAN_S for t in (row.intended, row.end)):
        raise ValueError(f"its times are not within 30 days of the run's t0 ({t0})")
    return row


def _is_series(series: Any) -> bool:
    def line_ok(line: Any) -> bool:
        return (
            isinstance(line, dict)
            and isinstance(line.get("legend"), str)
            and isinstance(line.get("points"), list)
            and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) for v in p)
                for p in line["points"]
            )
        )

    if not isinstance(series, dict):
        return False
    panels, errors = series.get("panels", {}), series.get("errors", [])
    return (
        isinstance(panels, dict)
        and all(isinstance(lines, list) and all(line_ok(line) for line in lines) for lines in panels.values())
        and isinstance(errors, list)
        and all(isinstance(e, str) for e in errors)
    )


def _lane_table(summary: Summary) -> list[tuple[str, dict[str, str]]]:
    """The lanes' figures, a row each: label, lane to its cell; a row no lane has a figure for
    is left out."""
    lanes = summary.lanes
    amp = summary.retry_amplification

    def ms(lane: str, key: str, stat: str) -> str:
        figures = getattr(lanes[lane], key)
        value = getattr(figures, stat, None) if figures is not None else None
        return "-" if value is None else f"{value / 1000:.3f} s"

    table: list[tuple[str, dict[str, str]]] = [
        ("checkouts", {n: str(v.requests) for n, v in lanes.items()}),
        ("errors", {n: f"{v.errors} ({(v.error_rate or 0):.1%})" for n, v in lanes.items()}),
        ("goodput", {n: f"{v.throughput_rps:.2f}/s" for n, v in lanes.items()}),
        *[
            (f"latency {s} (waited, failures too)", {n: ms(n, "latency_ms", s) for n in lanes})
            for s in ("p50", "p95", "p99", "max")
        ],
        *[(f"latency {s} (ok)", {n: ms(n, "latency_ok_ms", s) for n in lanes}) for s in ("p50", "p99")],
        *[(f"fulfilment {s}", {n: ms(n, "fulfillment_ms", s) for n in lanes}) for s in ("p50", "p95", "p99")],
        (
            "orders",
            {
                n: ", ".join(f"{k} {c}" for k, c in (v.orders.to_json() if v.orders else {}).items())
                for n, v in lanes.items()
            },
        ),
        (
            "downstream calls per order",
            {
                n: ("-" if amp.get(n) is None else f"{amp[n]:.2f}")
                + _lacking(summary, f"retry_amplification.{n}")
                for n in lanes
            },
        ),
    ]
    ladder = summary.ladder
    if ladder:
        table.append(
            (
                "attempts per arrival at the slow hop: during, after the trigger (at most)",
                {n: _rung(ladder.get(n)) for n in lanes},
            )
        )
        table.append(
            (
                "shoppers failed (in the end)",
                {
                    n: f"{ladder[n].shoppers_failed} of {ladder[n].shoppers}" if n in ladder else "-"
                    for n in lanes
                },
            )
        )
    broker = summary.run.broker if summary.run else None
    if broker and "async" in lanes:
        counts = ", ".join(
            f"{k.replace('_', ' ')} {v}{_lacking(summary, f'broker.{k}')}"
            for k, v in broker.items()
            if k != "name"
        )
        table.append(("broker", {n: f"{broker['name']}: {counts}" if n == "async" else "-" for n in lanes}))
    # A row no lane has a figure for (fulfilment on a system without a queue, orders on one
    # without a ledger) says nothing.
    return [(label, cells) for label, cells in table if any(cells[n] not in ("-", "") for n in lanes)]


def _rung(rung: LadderRung | None) -> str:
    """``email: 1.95, 2.90 (6)``: a lane's amplification at its slow hop against its theory."""
    if rung is None:
        return "-"
    amp = rung.amplification

    def x(value: float | None) -> str:
        return "not known" if value is None else f"{value:.2f}"

    return f"{rung.slow_hop}: {x(amp.during)}, {x(amp.after)} ({x(amp.theory)})"


def _lacking(summary: Summary, figure: str) -> str:
    """`` (incomplete: no count from worker-email)`` for a counter figure that lacks a process."""
    counters = summary.run.counters if summary.run else None
    missing = counters.incomplete.get(figure) if counters else None
    return f" (incomplete: no count from {', '.join(missing)})" if missing else ""


def _scale_note(summary: Summary) -> str:
    """`` at time scale 0.5`` for a time-scaled run (harness.config.timescale), else nothing."""
    scale = summary.time_scale
    return "" if scale == 1 else f" at time scale {scale:g} (times x {scale:g}, rates x 1/{scale:g})"


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` (and its PNGs) for a run directory; returns its path."""
    if (run_dir / "shootout.json").is_file():
        return write_shootout(run_dir, read_shootout(run_dir / "summary.json"))
    summary, series, rows = _load(run_dir)
    lanes = list(summary.lanes)
    axis = time_axis(summary, rows, series)
    t0 = summary.run.t0 if summary.run else 0.0  # _load refuses a summary without it
    status, colour = run_status(summary.verdicts, passed=summary.passed)
    page = _TEMPLATES.get_template("report.html").render(
        s=summary,
        lanes=lanes,
        title=f"{summary.scenario}{_scale_note(summary)}",
        status=status,
        status_colour=colour,
        style=STYLE,
        verdicts=[
            (v.outcome, OUTCOME_WORDS[v.outcome], v, blames_generator(v.reason)) for v in summary.verdicts
        ],
        story=story_charts(run_dir, lanes, rows, axis),
        generator=generator_part(run_dir, summary, t0, axis),
        groups=detail_charts(run_dir, lanes, rows, series, axis, t0),
        lane_table=_lane_table(summary),
        faults=[{**f.to_json(), "attributes": json.dumps(f.attributes)} for f in summary.chaos],
        series_errors=series.get("errors", []),
        run_end=axis.end,
    )
    path = run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
