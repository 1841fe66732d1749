"""The run report: ``report.html`` with PNG plots, built from a run directory alone.

``doorbuster report RUN_DIR`` rebuilds it from the files a run wrote (``summary.json``,
``series.json``, ``requests.jsonl``, ``scenario.json``), so a report can be regenerated on
any machine, long after the stack is gone.  Client-side plots come from the request log;
server-side plots come from the panel definitions' series, the same queries the Grafana
dashboards show.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from harness.analysis import Row
from harness.estimates import percentile
from harness.files import read_json, read_json_lines
from harness.panels import PANELS
from harness.records import RequestRecord
from harness.report_parts import STYLE, run_status, verdict_table
from harness.shootout import write_shootout
from model.errors import ConfigError

__all__ = ["write_report"]

_LANE_COLOURS = {"sync": "#c0392b", "async": "#2471a3"}


def _load(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], list[Row]]:
    if not (run_dir / "summary.json").exists():
        raise ConfigError(f"{run_dir} has no summary.json: not a doorbuster run directory")
    summary = read_json(run_dir / "summary.json")
    if not isinstance(summary, dict):
        raise ConfigError(f"{run_dir / 'summary.json'}: expected a JSON object, a run's summary")
    series: Any = {"panels": {}}
    if (run_dir / "series.json").exists():
        series = read_json(run_dir / "series.json")
        if not _is_series(series):
            raise ConfigError(
                f"{run_dir / 'series.json'}: expected a JSON object whose 'panels' maps each panel to "
                "a list of {legend, points: [[time, value], ...]}"
            )
    rows: list[Row] = []
    t0 = summary.get("t0")
    if not isinstance(t0, int | float) or not math.isfinite(t0):
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


def _shade(ax: Any, summary: dict[str, Any], relative_to: float = 0.0) -> None:
    for i, fault in enumerate(summary.get("chaos", [])):
        ax.axvspan(
            fault["start_s"] - relative_to, fault["end_s"] - relative_to,
            color="#f5b041", alpha=0.25, label=f"fault: {fault['name']}" if i < 6 else None,
        )  # fmt: skip


def _buckets(rows: list[Row], lane: str, kind: str, width: float, end: float) -> tuple[list[float], ...]:
    n = max(1, math.ceil(end / width))
    lat: list[list[float]] = [[] for _ in range(n)]
    ok = [0] * n
    bad = [0] * n
    for r in rows:
        if r.lane != lane or r.kind != kind:
            continue
        i = int(r.end // width)
        if not 0 <= i < n:
            continue
        if r.ok:
            lat[i].append(r.latency)
            ok[i] += 1
        else:
            bad[i] += 1
    xs = [(i + 0.5) * width for i in range(n)]
    p50 = [percentile(b, 0.5) for b in lat]
    p95 = [percentile(b, 0.95) for b in lat]
    p99 = [percentile(b, 0.99) for b in lat]
    return xs, p50, p95, p99, [o / width for o in ok], [b / width for b in bad]


def _client_plots(run_dir: Path, summary: dict[str, Any], rows: list[Row]) -> list[tuple[str, str]]:
    end = max((r.end for r in rows), default=1.0)
    lanes = list(summary.get("lanes", {}))
    plots = []
    fig, axes = plt.subplots(1, len(lanes), figsize=(6 * len(lanes), 3.6), squeeze=False, sharey=True)
    for ax, lane in zip(axes[0], lanes, strict=True):
        xs, p50, p95, p99, *_ = _buckets(rows, lane, "checkout", 5.0, end)
        ax.plot(xs, p50, label="p50", color=_LANE_COLOURS[lane])
        ax.plot(xs, p95, label="p95", color=_LANE_COLOURS[lane], linestyle="--")
        ax.plot(xs, p99, label="p99", color="#555", linestyle=":")
        _shade(ax, summary)
        ax.set_title(f"{lane}: checkout latency (ok, from intended start)")
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    plots.append(_save(fig, run_dir, "latency.png", "Checkout latency percentiles over time, per lane"))
    fig, ax = plt.subplots(figsize=(12, 3.6))
    for lane in lanes:
        xs, *_, ok, bad = _buckets(rows, lane, "checkout", 5.0, end)
        ax.plot(xs, ok, label=f"{lane} ok/s", color=_LANE_COLOURS[lane])
        ax.plot(xs, bad, label=f"{lane} errors/s", color=_LANE_COLOURS[lane], linestyle=":")
    _shade(ax, summary)
    ax.set_title("Throughput and errors per second, per lane")
    ax.set_xlabel("seconds into the run")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    plots.append(_save(fig, run_dir, "throughput.png", "Successful checkouts and errors per second"))
    if "async" in lanes:
        fig, ax = plt.subplots(figsize=(12, 3.2))
        xs, p50, p95, *_ = _buckets(rows, "async", "fulfillment", 5.0, end)
        ax.plot(xs, p50, label="p50", color=_LANE_COLOURS["async"])
        ax.plot(xs, p95, label="p95", color=_LANE_COLOURS["async"], linestyle="--")
        _shade(ax, summary)
        ax.set_title("async: time from arrival to fulfilment, by when it was fulfilled")
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        plots.append(_save(fig, run_dir, "fulfillment.png", "Time to fulfilment (eventual consistency)"))
    return plots


def _server_plots(run_dir: Path, summary: dict[str, Any], series: dict[str, Any]) -> list[tuple[str, str]]:
    plots = []
    t0 = float(summary.get("t0", series.get("start", 0)))
    for panel in PANELS:
        lines = series.get("panels", {}).get(panel.key)
        if not panel.in_report or not lines:
            continue
        fig, ax = plt.subplots(figsize=(12, 3.0))
        for line in lines[:12]:
            xs = [p[0] - t0 for p in line["points"]]
            ys = [p[1] for p in line["points"]]
            ax.plot(xs, ys, label=line["legend"])
        _shade(ax, summary)
        ax.set_title(panel.title)
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel({"s": "seconds", "reqps": "per second"}.get(panel.unit, ""))
        ax.legend(fontsize=7, ncol=3)
        ax.grid(alpha=0.3)
        plots.append(_save(fig, run_dir, f"panel-{panel.key}.png", panel.title))
    return plots


def _save(fig: Any, run_dir: Path, name: str, caption: str) -> tuple[str, str]:
    fig.tight_layout()
    fig.savefig(run_dir / name, dpi=90)
    plt.close(fig)
    return name, caption


def _lane_table(summary: dict[str, Any]) -> str:
    lanes = summary["lanes"]
    amp = summary.get("retry_amplification", {})

    def ms(lane: str, key: str, stat: str) -> str:
        value = (lanes[lane].get(key) or {}).get(stat)
        return "-" if value is None else f"{value / 1000:.3f} s"

    table: list[tuple[str, dict[str, str]]] = [
        ("checkouts", {n: str(v["requests"]) for n, v in lanes.items()}),
        ("errors", {n: f"{v['errors']} ({(v['error_rate'] or 0):.1%})" for n, v in lanes.items()}),
        ("goodput", {n: f"{v['throughput_rps']:.2f}/s" for n, v in lanes.items()}),
        *[
            (f"latency {s} (waited, failures too)", {n: ms(n, "latency_ms", s) for n in lanes})
            for s in ("p50", "p95", "p99", "max")
        ],
        *[(f"latency {s} (ok)", {n: ms(n, "latency_ok_ms", s) for n in lanes}) for s in ("p50", "p99")],
        *[(f"fulfilment {s}", {n: ms(n, "fulfillment_ms", s) for n in lanes}) for s in ("p50", "p95", "p99")],
        (
            "orders",
            {n: ", ".join(f"{k} {c}" for k, c in v.get("orders", {}).items()) for n, v in lanes.items()},
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
    ladder = summary.get("ladder", {})
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
                    n: f"{ladder[n]['shoppers_failed']} of {ladder[n]['shoppers']}" if n in ladder else "-"
                    for n in lanes
                },
            )
        )
    broker = summary.get("broker")
    if broker and "async" in lanes:
        counts = ", ".join(
            f"{k.replace('_', ' ')} {v}{_lacking(summary, f'broker.{k}')}"
            for k, v in broker.items()
            if k != "name"
        )
        table.append(("broker", {n: f"{broker['name']}: {counts}" if n == "async" else "-" for n in lanes}))
    # A row no lane has a figure for (fulfilment on a system without a queue, orders on one
    # without a ledger) says nothing.
    table = [(label, cells) for label, cells in table if any(cells[n] not in ("-", "") for n in lanes)]
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(n)}</th>" for n in lanes) + "</tr>"
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{html.escape(cells[n])}</td>" for n in lanes)
        + "</tr>"
        for label, cells in table
    )
    return f"<table>{head}{body}</table>"


def _rung(rung: dict[str, Any] | None) -> str:
    """``email: 1.95, 2.90 (6)``: a lane's amplification at its slow hop against its theory."""
    if rung is None:
        return "-"
    amp = rung["amplification"]

    def x(value: float | None) -> str:
        return "not known" if value is None else f"{value:.2f}"

    return f"{rung['slow_hop']}: {x(amp['during'])}, {x(amp['after'])} ({x(amp['theory'])})"


def _lacking(summary: dict[str, Any], figure: str) -> str:
    """`` (incomplete: no count from worker-email)`` for a counter figure that lacks a process."""
    missing = summary.get("counters", {}).get("incomplete", {}).get(figure)
    return f" (incomplete: no count from {', '.join(missing)})" if missing else ""


def _scale_note(summary: dict[str, Any]) -> str:
    """`` at time scale 0.5`` for a time-scaled run (harness.timescale), else nothing."""
    scale = summary.get("time_scale", 1.0)
    return "" if scale == 1 else f" at time scale {scale:g} (times x {scale:g}, rates x 1/{scale:g})"


def write_report(run_dir: Path) -> Path:
    """Write ``report.html`` (and its PNGs) for a run directory; returns its path."""
    if (run_dir / "shootout.json").is_file():
        return write_shootout(run_dir, read_json(run_dir / "summary.json"))
    summary, series, rows = _load(run_dir)
    plots = _client_plots(run_dir, summary, rows) + _server_plots(run_dir, summary, series)
    chaos = "".join(
        f"<tr><td>{html.escape(f['name'])}</td><td>{html.escape(f['dependency'])}</td>"
        f"<td>{html.escape(', '.join(f['lanes']))}</td><td>{html.escape(f['type'])}</td>"
        f"<td>{html.escape(json.dumps(f['attributes']))}</td>"
        f"<td>{f['start_s']:.0f}-{f['end_s']:.0f} s</td></tr>"
        for f in summary.get("chaos", [])
    )
    reading = "".join(f"<li>{html.escape(line)}</li>" for line in summary.get("reading", []))
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in plots
    )
    missing = "".join(f"<p class=note>{html.escape(e)}</p>" for e in series.get("errors", []))
    status, colour = run_status(summary)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>doorbuster: {html.escape(summary["scenario"])} ({status})</title>
<style>
{STYLE}
.status {{ font-size: 1.4em; font-weight: bold; color: {colour}; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }} .note {{ color: #a04000; }}
</style></head><body>
<h1>{html.escape(summary["scenario"])}{_scale_note(summary)}</h1>
<p class=status>{status}{" (interrupted)" if summary.get("interrupted") else ""}</p>
<h2>What happened</h2><ul>{reading}</ul>
<h2>Verdicts</h2>{verdict_table(summary.get("verdicts", []))}
<h2>{"Both lanes" if len(summary["lanes"]) == 2 else "The lane"}</h2>{_lane_table(summary)}
<h2>Faults</h2><table><tr><th>name</th><th>dependency</th><th>lanes</th><th>type</th><th>attributes</th><th>window</th></tr>{chaos}</table>
<h2>Over time</h2><p>Fault windows are shaded.</p>{missing}{figures}
</body></html>
"""
    path = run_dir / "report.html"
    path.write_text(page)
    return path
