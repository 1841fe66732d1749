"""Which trials a sweep runs next, from the trials it has finished (so a resumed sweep picks
up where it stopped: the plan is a function of what is on disk).

1. Every cell of the declared grid, ``trials`` times.
2. Then, when ``boundary_trials`` is more than ``trials``: the cells next to a tipping point
   (a neighbour along the load or the trigger axis, same policy, that tipped on some lane
   where this one did not, or the other way round; both determined) up to ``boundary_trials``
   repeats, so the share that tipped is measured where it matters.
3. Then ``refine`` bisection steps per load: a new trigger value halfway between the largest
   value below the smallest metastable one and that metastable one (the sync lane's bracket
   first, else the async lane's), ``trials`` times each.  The trigger axis is the swept
   attribute's values, or the durations when no attribute is swept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from harness.sweep.grid import Cell, grid_cells
from harness.sweep.outcomes import DETERMINED, CellSummary
from model.scenario import SweepSection

__all__ = ["Plan", "next_trials"]

Plan = list[tuple[Cell, int]]  # (cell, repeat number from 1)
# cell -> lane -> summary of its counted trials
CellOutcomes = Callable[[Cell], Mapping[str, CellSummary]]


def _trigger(sweep: SweepSection, cell: Cell) -> float | None:
    return cell.value if sweep.attribute is not None else cell.duration


def _with_trigger(sweep: SweepSection, cell: Cell, trigger: float) -> Cell:
    if sweep.attribute is not None:
        return Cell(policy=cell.policy, load=cell.load, value=trigger, duration=cell.duration)
    return Cell(policy=cell.policy, load=cell.load, value=cell.value, duration=trigger)


def _missing(cells: Sequence[Cell], upto: int, done: Mapping[Cell, int]) -> Plan:
    return [(cell, r) for cell in cells for r in range(done.get(cell, 0) + 1, upto + 1)]


def _differs(a: Mapping[str, CellSummary], b: Mapping[str, CellSummary]) -> bool:
    for lane, mine in a.items():
        theirs = b.get(lane)
        if theirs is None or mine.outcome not in DETERMINED or theirs.outcome not in DETERMINED:
            continue
        # the share that tipped is what repeats measure: stable beside recovered is no boundary
        if (mine.outcome == "metastable") != (theirs.outcome == "metastable"):
            return True
    return False


def boundary_cells(sweep: SweepSection, cells: Sequence[Cell], outcomes: CellOutcomes) -> list[Cell]:
    """Cells beside a tipping point (same policy; the next load with
    the same trigger, or the next value or duration at the same load)."""
    found: list[Cell] = []
    loads = sorted(sweep.loads)
    for cell in cells:
        neighbours = []
        i = loads.index(cell.load) if cell.load in loads else -1
        for j in (i - 1, i + 1):
            if i >= 0 and 0 <= j < len(loads):
                neighbours.append(
                    Cell(policy=cell.policy, load=loads[j], value=cell.value, duration=cell.duration)
                )
        # the next smaller and larger value at this duration, and duration at this value
        for axis in ("value", "duration"):
            other = "duration" if axis == "value" else "value"
            line = sorted(
                (
                    c
                    for c in cells
                    if c.policy == cell.policy
                    and c.load == cell.load
                    and getattr(c, other) == getattr(cell, other)
                ),
                key=lambda c: getattr(c, axis) or 0.0,
            )
            k = line.index(cell)
            neighbours += line[max(0, k - 1) : k] + line[k + 1 : k + 2]
        mine = outcomes(cell)
        if any(n in cells and _differs(mine, outcomes(n)) for n in neighbours):
            found.append(cell)
    return found


def _bisection(sweep: SweepSection, line: Sequence[Cell], outcomes: CellOutcomes) -> float | None:
    """The next trigger value on one line (policy, load, other axis), or None."""
    for lane in ("sync", "async"):
        points = sorted(
            (t, outcomes(c)[lane].outcome)
            for c in line
            if (t := _trigger(sweep, c)) is not None and lane in outcomes(c)
        )
        tipped = [t for t, o in points if o == "metastable"]
        if not tipped:
            continue
        held = [t for t, o in points if o in ("stable", "recovered") and t < tipped[0]]
        if not held:
            continue
        middle = (held[-1] + tipped[0]) / 2
        if sweep.attribute is not None:
            middle = float(round(middle))  # Toxiproxy and the services take whole milliseconds
        if held[-1] < middle < tipped[0]:
            return middle
    return None


def next_trials(sweep: SweepSection, done: Mapping[Cell, int], outcomes: CellOutcomes) -> Plan:
    """The trials to run next, in order (empty: the sweep is complete).  ``done``: finished
    trials per cell (counted or not), so a trial that started dirty is not run a third time."""
    grid = grid_cells(sweep)
    plan = _missing(grid, sweep.trials, done)
    if plan:
        return plan
    if sweep.boundary_trials > sweep.trials:
        plan = _missing(boundary_cells(sweep, grid, outcomes), sweep.boundary_trials, done)
        if plan:
            return plan
    if sweep.refine == 0:
        return []
    grid_triggers = set(sweep.values if sweep.attribute is not None else sweep.durations)
    run = sorted(set(grid) | set(done))
    lines: dict[tuple[str | None, float, float | None], list[Cell]] = {}
    for cell in run:
        other = cell.duration if sweep.attribute is not None else cell.value
        lines.setdefault((cell.policy, cell.load, other), []).append(cell)
    plan = []
    for line in lines.values():
        unfinished = _missing([c for c in line if c not in grid], sweep.trials, done)
        if unfinished:
            plan += unfinished
            continue
        steps = sum(1 for c in line if _trigger(sweep, c) not in grid_triggers)
        if steps >= sweep.refine:
            continue
        middle = _bisection(sweep, line, outcomes)
        if middle is not None:
            plan += [(_with_trigger(sweep, line[0], middle), r) for r in range(1, sweep.trials + 1)]
    return plan
