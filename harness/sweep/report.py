"""A sweep's outputs, from its trials' files alone: ``sweep.json``, ``map.png``, ``sweep.html``.

``sweep.json``::

    {"grid": {...}, "complete": bool, "stopped": str | null, "trials_run": n, "dirty_trials": n,
     "lanes": {"sync": [{"cell", "policy", "load", "trigger": {...}, "as_written": {"load",
                         "trigger"}, "outcome", "trials",
                         "outcomes": {...}, "tipped_share", "reasons", "runs", "lost_orders",
                         "recovery_s", "ladder"}, ...],
               "async": [...]}}

A cell with no counted trial has outcome ``not run``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from harness.analysis.ladder import ladder_table_html
from harness.config.timescale import FAULT_TIMES
from harness.records.summary import Summary
from harness.report.parts import STYLE
from harness.sweep.directory import TrialRecord
from harness.sweep.grid import Cell
from harness.sweep.outcomes import CellSummary, TrialOutcome, classify_lane, summarise_cell

__all__ = [
    "COLOURS",
    "SweepTrial",
    "as_written",
    "cell_summaries",
    "ladder_entries",
    "sweep_data",
    "write_sweep",
]

COLOURS = {
    "stable": "#27ae60",
    "recovered": "#f4d03f",
    "metastable": "#c0392b",
    "undetermined": "#95a5a6",
    "not run": "#ffffff",
}


@dataclass(frozen=True, kw_only=True)
class SweepTrial:
    """A finished trial with its run's summary (None when it has none)."""

    record: TrialRecord
    run: str  # its directory, relative to the sweep's
    summary: Summary | None


def trial_outcome(trial: SweepTrial, lane: str) -> TrialOutcome:
    if trial.summary is None:
        return TrialOutcome("undetermined", "the trial has no summary.json")
    recovery = trial.summary.metastability.get(lane)
    # The classifier reads the entry as summary.json holds it (its tests give partial ones).
    return classify_lane(recovery.to_json() if recovery else None)


def cell_summaries(cell: Cell, trials: Sequence[SweepTrial], lanes: Sequence[str]) -> dict[str, CellSummary]:
    counted = [t for t in trials if t.record.cell == cell and t.record.status == "counted"]
    return {lane: summarise_cell([trial_outcome(t, lane) for t in counted]) for lane in lanes}


def _lost_orders(summary: Summary | None) -> bool:
    verdicts = summary.verdicts if summary else ()
    return any(v.expectation == "no lost orders" and not v.passed for v in verdicts)


def _recovery_s(summary: Summary | None, lane: str) -> float | None:
    recovery = summary.metastability.get(lane) if summary else None
    return recovery.recovery_s if recovery else None


def _rung(summary: Summary | None, lane: str) -> dict[str, Any] | None:
    """The lane's rung as ``sweep.json`` holds it: as the trial's summary.json had it."""
    rung = summary.ladder.get(lane) if summary else None
    return rung.to_json() if rung else None


def sweep_data(
    grid: Mapping[str, Any],
    cells: Sequence[Cell],
    trials: Sequence[SweepTrial],
    *,
    complete: bool,
    stopped: str | None,
) -> dict[str, Any]:
    """The body of ``sweep.json`` (see the module's docstring)."""
    lanes = list(grid["base"]["load"]["lanes"])
    attribute = grid.get("attribute")
    shown = {k: v for k, v in grid.items() if k != "base"}
    out: dict[str, Any] = {
        "grid": shown,
        "complete": complete,
        "stopped": stopped,
        "trials_run": len(trials),
        "dirty_trials": sum(1 for t in trials if t.record.status == "dirty"),
        "lanes": {lane: [] for lane in lanes},
    }
    # The grid's policy order (a ladder's seed first), then load and trigger.
    order = {p["name"]: i for i, p in enumerate(grid.get("policies") or ())}
    for cell in sorted(
        set(cells) | {t.record.cell for t in trials}, key=lambda c: (order.get(c.policy, -1), c)
    ):
        mine = sorted((t for t in trials if t.record.cell == cell), key=lambda t: t.record.repeat)
        counted = [t for t in mine if t.record.status == "counted"]
        summaries = cell_summaries(cell, trials, lanes)
        for lane in lanes:
            entry = {
                "cell": cell.id,
                "policy": cell.policy,
                "load": cell.load,
                "trigger": cell.trigger(attribute),
                "as_written": as_written(grid, cell.load, cell.trigger(attribute)),
                **summaries[lane].as_json(),
                "runs": [t.run for t in mine],
                "dirty_runs": [t.run for t in mine if t.record.status == "dirty"],
                "lost_orders": sum(1 for t in counted if _lost_orders(t.summary)),
                "recovery_s": [_recovery_s(t.summary, lane) for t in counted],
                "ladder": [_rung(t.summary, lane) for t in counted],
            }
            out["lanes"][lane].append(entry)
    return out


def as_written(grid: Mapping[str, Any], load: float, trigger: Mapping[str, float]) -> dict[str, Any]:
    """A cell's load and trigger in the scenario's own time, as its section wrote them: a
    sweep at time scale S runs loads / S and times x S (harness.config.timescale)."""
    scale = float(grid.get("time_scale") or 1.0)
    types = [c.get("type") for c in grid["base"].get("chaos", ()) if c.get("name") == grid["step"]]
    times = FAULT_TIMES.get(str(types[0]) if types else "", frozenset()) | {"for"}
    return {
        "load": round(load * scale, 6),
        "trigger": {k: round(v / scale, 6) if k in times else v for k, v in trigger.items()},
    }


_TIME_ATTRIBUTES = frozenset().union(*FAULT_TIMES.values())


def _trigger_label(trigger: Mapping[str, float]) -> str:
    def unit(key: str) -> str:
        return " s" if key == "for" else " ms" if key in _TIME_ATTRIBUTES else ""

    return ", ".join(f"{k} {v:g}{unit(k)}" for k, v in trigger.items()) or "-"


def _cell_text(entry: Mapping[str, Any]) -> str:
    if entry["outcome"] == "not run":
        return "not run"
    counts = entry["outcomes"]
    determined = counts["stable"] + counts["recovered"] + counts["metastable"]
    text = f"{counts['metastable']}/{determined} tipped" if determined else "?"
    return text + (f"\n{counts['undetermined']} undet." if counts["undetermined"] else "")


def write_map(path: Path, data: Mapping[str, Any]) -> None:
    """Per policy a row, per lane a column: load on x, trigger on y, cells coloured by outcome,
    the share of determined trials that tipped written in each."""
    lanes = list(data["lanes"])
    entries = [e for lane in lanes for e in data["lanes"][lane]]
    policies = list(dict.fromkeys(e["policy"] for e in entries)) or [None]
    loads = sorted({e["load"] for e in entries})
    triggers = sorted({tuple(sorted(e["trigger"].items())) for e in entries})
    written = {(e["load"], tuple(sorted(e["trigger"].items()))): e["as_written"] for e in entries}
    load_labels = [f"{next(w['load'] for (x, _), w in written.items() if x == v):.3g}" for v in loads]
    trigger_labels = [
        _trigger_label(next(w["trigger"] for (_, t), w in written.items() if t == v)) for v in triggers
    ]
    scale = float(data["grid"].get("time_scale") or 1.0)
    fig, axes = plt.subplots(
        len(policies), len(lanes), squeeze=False,
        figsize=(4.5 * len(lanes), max(2.5, 0.6 * len(triggers) + 1.5) * len(policies)),
    )  # fmt: skip
    for row, policy in enumerate(policies):
        for col, lane in enumerate(lanes):
            ax = axes[row][col]
            for e in data["lanes"][lane]:
                if e["policy"] != policy:
                    continue
                x, y = loads.index(e["load"]), triggers.index(tuple(sorted(e["trigger"].items())))
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, color=COLOURS[e["outcome"]], ec="#555"))
                ax.text(x, y, _cell_text(e), ha="center", va="center", fontsize=8)
            ax.set_xlim(-0.5, len(loads) - 0.5)
            ax.set_ylim(-0.5, len(triggers) - 0.5)
            ax.set_xticks(range(len(loads)), load_labels)
            ax.set_yticks(range(len(triggers)), trigger_labels, fontsize=8)
            ax.set_xlabel("offered load (/s)" + ("" if scale == 1 else f", run at time scale {scale:g}"))
            ax.set_title(f"{lane}" + (f", policy {policy}" if policy else ""))
    handles = [Rectangle((0, 0), 1, 1, color=c, ec="#555") for c in COLOURS.values()]
    fig.legend(handles, list(COLOURS), loc="lower center", ncol=len(COLOURS), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def ladder_entries(data: Mapping[str, Any], lane: str) -> list[Mapping[str, Any]]:
    """The lane's ladder rows, one per counted trial, in the grid's order (the seed's first).
    An async row names the sync policy of its trial: the async lane's own is always its workers'."""
    return [
        {**ladder, "policy": f"{ladder['policy']} (beside sync {e['policy']})"}
        if lane != "sync" and e["policy"]
        else ladder
        for e in data["lanes"].get(lane, ())
        for ladder in e["ladder"]
        if isinstance(ladder, Mapping)
    ]


def _ladder_tables(data: Mapping[str, Any]) -> str:
    parts = []
    for lane, entries in data["lanes"].items():
        missing = sum(
            1 for e in entries for ladder in e["ladder"] or [None] if not isinstance(ladder, Mapping)
        )
        note = f"<p>{missing} trial(s) without these figures (not measured).</p>" if missing else ""
        parts.append(f"<h3>{html.escape(lane)}</h3>{ladder_table_html(ladder_entries(data, lane))}{note}")
    return "".join(parts)


def _cell_rows(data: Mapping[str, Any]) -> str:
    rows = []
    for lane, entries in data["lanes"].items():
        for e in entries:
            runs = " ".join(
                f'<a href="{html.escape(run)}/report.html">{html.escape(run.rsplit("/", 1)[-1])}</a>'
                + (" (dirty)" if run in e["dirty_runs"] else "")
                for run in e["runs"]
            )
            share = "-" if e["tipped_share"] is None else f"{e['tipped_share']:.0%}"
            counts = ", ".join(f"{k} {v}" for k, v in e["outcomes"].items() if v)
            written = e["as_written"]
            rows.append(
                f"<tr><td>{lane}</td><td>{html.escape(str(e['policy'] or ''))}</td>"
                f"<td>{written['load']:.3g}</td><td>{html.escape(_trigger_label(written['trigger']))}</td>"
                f'<td style="background:{COLOURS[e["outcome"]]}">{html.escape(e["outcome"])}</td>'
                f"<td>{e['trials']}</td><td>{html.escape(counts)}</td><td>{share}</td>"
                f"<td>{e['lost_orders'] or ''}</td><td>{html.escape('; '.join(e['reasons']))}</td>"
                f"<td>{runs}</td></tr>"
            )
    return (
        "<table><tr><th>lane</th><th>policy</th><th>load (/s)</th><th>trigger</th><th>outcome</th>"
        "<th>trials</th><th>outcomes</th><th>tipped</th><th>trials that lost orders</th><th>reasons</th>"
        "<th>trials' reports</th></tr>" + "".join(rows) + "</table>"
    )


def write_sweep(root: Path, data: Mapping[str, Any]) -> None:
    """``sweep.json``, ``map.png`` and ``sweep.html`` in the sweep's directory."""
    (root / "sweep.json").write_text(json.dumps(data, indent=2))
    write_map(root / "map.png", data)
    grid = data["grid"]
    image = base64.b64encode((root / "map.png").read_bytes()).decode()
    state = "complete" if data["complete"] else f"incomplete: {data['stopped'] or 'stopped'}"
    scale = grid.get("time_scale", 1.0)
    ladder = f"<h2>Retry-policy ladder</h2>{_ladder_tables(data)}" if grid.get("policies") else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>doorbuster sweep: {html.escape(grid["scenario"])}</title>
<style>
{STYLE}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Sweep of {html.escape(grid["scenario"])}{"" if scale == 1 else f" at time scale {scale:g}"}</h1>
<p>Step {html.escape(grid["step"])} varied ({html.escape(str(grid.get("attribute") or "duration"))}),
{grid["trials"]} trial(s) per cell, observed {grid["observe_s"]:g} s after the trigger's removal;
{data["trials_run"]} trial(s) run, {data["dirty_trials"]} started on a stack that was not clean
(not counted). Sweep {html.escape(state)}.</p>
<p>A cell is <b>stable</b> when the trigger did not push the lane below its bar, <b>recovered</b>
when it did and the lane recovered after the trigger was removed, <b>metastable</b> when it did
not recover with the trigger gone and no more load, <b>undetermined</b> otherwise (with the
reason). "k/n tipped": metastable trials among the determined ones.</p>
<img src="data:image/png;base64,{image}" alt="vulnerable-region map">
{ladder}
<h2>Cells</h2>{_cell_rows(data)}
</body></html>
"""
    (root / "sweep.html").write_text(page)
