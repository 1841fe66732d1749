"""Two runs side by side: did NEW regress against BASE?  (``doorbuster compare``)

Each run's figures are computed again from its own files, as ``doorbuster judge`` computes
them (:mod:`harness.analysis.recorded`): per lane, over the load, the checkout latency's p50, p95 and p99,
the error rate and the throughput, each with its 95% interval (:mod:`harness.analysis.estimates`), and
the run's verdicts.  A figure is decided the way a verdict ``at most N% above baseline`` is,
BASE standing for the baseline and each side taken at its own interval:

- a latency or an error rate *regressed* when NEW's interval lies wholly above BASE's top
  x (1 + bound), and is *within bound* when NEW's top is at most BASE's bottom x (1 + bound);
- a throughput regressed when NEW's top is under BASE's bottom x (1 - bound), and is within
  bound when NEW's bottom is at least BASE's top x (1 - bound);
- anything else is *undetermined*, with the reason (too few samples to bound a side, or
  intervals that overlap the bound): listed, never counted as a regression.

For example against BASE's p99 of [0.38, 0.41] s with 10% allowed, NEW's [0.50, 0.60] s
regressed (0.50 > 1.1 x 0.41 = 0.451), [0.30, 0.41] s is within bound (0.41 <= 1.1 x 0.38 =
0.418), and [0.40, 0.46] s is undetermined (0.46 > 0.418, but 0.40 is not over 0.451).

Two runs of different scenarios, systems under test, time scales or lanes measure different
things: they are refused unless ``force``, and then the differences are listed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.analysis.estimates import Estimate, samples_to_bound
from harness.analysis.figures import LaneFigures, format_figure, lane_figures
from harness.analysis.recorded import judged_load_end, read_run_scenario, recorded_run, summarise
from harness.records.run_dir import LEDGER_FILE
from harness.records.schema import read_ledger
from harness.records.verdicts import Verdict
from model.errors import ConfigError
from model.scenario import Scenario
from model.topology import LANES

__all__ = [
    "FIGURES",
    "FigureComparison",
    "RunComparison",
    "VerdictPair",
    "compare_runs",
    "decide",
    "parse_bound",
]

Change = Literal["regressed", "within bound", "undetermined"]

# (name, metric, stat, higher is worse)
FIGURES: tuple[tuple[str, str, str | None, bool], ...] = (
    ("p50 latency", "checkout", "p50", True),
    ("p95 latency", "checkout", "p95", True),
    ("p99 latency", "checkout", "p99", True),
    ("error rate", "error_rate", None, True),
    ("throughput", "throughput", None, False),
)
_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def parse_bound(text: str) -> float:
    """``--max-regression``: ``"10%"`` or ``"0.1"`` -> 0.1; ConfigError for anything else.

    >>> parse_bound("10%"), parse_bound("0.25"), parse_bound("0%")
    (0.1, 0.25, 0.0)
    """
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.removesuffix("%")) / (100 if percent else 1)
    except ValueError:
        raise ConfigError(f"--max-regression {text!r}: expected a percentage like 10% (or 0.1)") from None
    if not math.isfinite(value) or not 0 <= value < 1:
        raise ConfigError(f"--max-regression {text!r}: expected from 0% to under 100%")
    return value


@dataclass(frozen=True, kw_only=True)
class FigureComparison:
    lane: str
    figure: str  # "p99 latency", "error rate", "throughput"
    metric: str
    base: Estimate
    new: Estimate
    change: Change
    reason: str | None = None

    def shown(self, est: Estimate) -> str:
        """``0.412s [0.390s, 0.450s] n=812``, as the verdicts show a figure."""
        value, low, high = (format_figure(self.metric, x) for x in (est.value, est.low, est.high))
        return f"{value} [{low}, {high}] n={est.n}"

    @property
    def relative(self) -> str:
        """NEW's point value against BASE's: ``+25.0%``, or ``-`` when BASE's is 0 or missing."""
        if not self.base.value or math.isnan(self.base.value) or math.isnan(self.new.value):
            return "-"
        return f"{(self.new.value - self.base.value) / self.base.value:+.1%}"

    def as_json(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "figure": self.figure,
            "base": self.base.as_json(),
            "new": self.new.as_json(),
            "change": self.change,
            "reason": self.reason,
        }


@dataclass(frozen=True, kw_only=True)
class VerdictPair:
    """One expectation's verdict in each run (None: the run did not have it)."""

    expectation: str
    base: Verdict | None
    new: Verdict | None

    @property
    def base_outcome(self) -> str:
        return "-" if self.base is None else self.base.outcome

    @property
    def new_outcome(self) -> str:
        return "-" if self.new is None else self.new.outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "base": None if self.base is None else self.base.as_json(),
            "new": None if self.new is None else self.new.as_json(),
        }


@dataclass(frozen=True, kw_only=True)
class RunComparison:
    base_dir: Path
    new_dir: Path
    scenario: str
    max_regression: float
    figures: tuple[FigureComparison, ...]
    verdicts: tuple[VerdictPair, ...]
    differences: tuple[str, ...] = ()  # what differs between the runs (compared with force)

    @property
    def regressed(self) -> tuple[FigureComparison, ...]:
        return tuple(f for f in self.figures if f.change == "regressed")

    @property
    def undetermined(self) -> tuple[FigureComparison, ...]:
        return tuple(f for f in self.figures if f.change == "undetermined")

    @property
    def headline(self) -> str:
        """``2 figure(s) regressed beyond 10%``, or that none did (and how many were not decided)."""
        allowed = f"{self.max_regression:.0%}"
        undecided = f"{len(self.undetermined)} of {len(self.figures)} figure(s) undetermined"
        if self.regressed:
            names = ", ".join(f"{f.lane} {f.figure}" for f in self.regressed)
            return f"{len(self.regressed)} figure(s) regressed beyond {allowed}: {names}"
        if self.undetermined:
            return f"no figure shown to regress beyond {allowed}; {undecided} (their reasons say why)"
        return f"no figure regressed beyond {allowed}"

    def as_json(self) -> dict[str, Any]:
        return {
            "base": str(self.base_dir),
            "new": str(self.new_dir),
            "scenario": self.scenario,
            "max_regression": self.max_regression,
            "differences": list(self.differences),
            "figures": [f.as_json() for f in self.figures],
            "verdicts": [v.as_json() for v in self.verdicts],
            "regressed": len(self.regressed),
            "undetermined": len(self.undetermined),
        }


def _open_side(figure: str, stat: str | None, est: Estimate, run: str, *, above: bool) -> str | None:
    """Why ``run``'s interval is open on the side the decision needs, or None."""
    if math.isfinite(est.high if above else est.low):
        return None
    side = "above" if above else "below"
    if stat in _QUANTILES:
        need = samples_to_bound(_QUANTILES[stat], above=above)
        return f"{run}'s {figure} is not bounded from {side} (n={est.n}; a {stat} needs at least {need})"
    return f"{run}'s {figure} is not bounded from {side} (n={est.n})"


def decide(
    base: Estimate, new: Estimate, bound: float, *, higher_is_worse: bool, figure: str = "figure",
    stat: str | None = None,
) -> tuple[Change, str | None]:  # fmt: skip
    """NEW against BASE with ``bound`` allowed, each by its interval (the module's rules)."""
    if base.n == 0 or new.n == 0 or math.isnan(base.value) or math.isnan(new.value):
        which = "BASE" if base.n == 0 or math.isnan(base.value) else "NEW"
        return "undetermined", f"{which} has no data for the {figure}"
    if higher_is_worse:
        factor = 1 + bound
        if new.low > factor * base.high:
            return "regressed", None
        if new.high <= factor * base.low:
            return "within bound", None
        # A bound can be shown only with NEW bounded above and BASE below.
        opened = _open_side(figure, stat, new, "NEW", above=True) or _open_side(
            figure, stat, base, "BASE", above=False
        )
        if opened is None and base.value == 0:
            opened = f"BASE's {figure} was 0: no {figure} can be shown to be within {bound:.0%} of it"
    else:
        factor = 1 - bound
        if new.high < factor * base.low:
            return "regressed", None
        if new.low >= factor * base.high:
            return "within bound", None
        opened = _open_side(figure, stat, new, "NEW", above=False) or _open_side(
            figure, stat, base, "BASE", above=True
        )
    return "undetermined", opened or (
        f"NEW's interval against BASE's with {bound:.0%} allowed decides neither way; more samples would"
    )


@dataclass(frozen=True)
class _JudgedRun:
    scenario: Scenario
    figures: dict[str, LaneFigures]
    verdicts: tuple[Verdict, ...]


def _judged(run_dir: Path) -> _JudgedRun:
    """The run's lanes' figures over its load and its verdicts, from its files alone."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a directory (a run directory of doorbuster run)")
    ledger = read_ledger(run_dir / LEDGER_FILE)
    scenario = read_run_scenario(run_dir)
    try:
        run = recorded_run(run_dir, scenario, ledger.t0)
        summary = summarise(scenario, run, ledger)
    except ValueError as exc:  # records that passed their own checks but not together
        raise ConfigError(f"{run_dir}: the recorded files do not make one run ({exc})") from exc
    end = judged_load_end(scenario, run, ledger)
    figures = {lane: lane_figures(run.rows, lane, 0.0, end) for lane in scenario.load.lanes}
    return _JudgedRun(scenario, figures, summary.verdicts)


def _system(scenario: Scenario) -> str:
    system = scenario.stack.system
    return "checkout" if system is None else system.name


def _differences(base: Scenario, new: Scenario) -> list[str]:
    facts = {
        "scenario": (base.name, new.name),
        "system": (_system(base), _system(new)),
        "time scale": (f"{base.time_scale:g}", f"{new.time_scale:g}"),
        "lanes": (", ".join(base.load.lanes), ", ".join(new.load.lanes)),
    }
    return [f"{what}: {b} in BASE, {n} in NEW" for what, (b, n) in facts.items() if b != n]


def _verdict_pairs(base: Sequence[Verdict], new: Sequence[Verdict]) -> tuple[VerdictPair, ...]:
    by_text = {v.expectation: v for v in new}
    pairs = [VerdictPair(expectation=v.expectation, base=v, new=by_text.get(v.expectation)) for v in base]
    seen = {v.expectation for v in base}
    pairs += [
        VerdictPair(expectation=v.expectation, base=None, new=v) for v in new if v.expectation not in seen
    ]
    return tuple(pairs)


def compare_runs(
    base_dir: Path, new_dir: Path, *, max_regression: float, force: bool = False
) -> RunComparison:
    """BASE and NEW compared figure by figure; ConfigError for a bad run directory (naming its
    file) or for runs of different experiments unless ``force``."""
    base, new = _judged(base_dir), _judged(new_dir)
    differences = _differences(base.scenario, new.scenario)
    if differences and not force:
        raise ConfigError(
            f"{base_dir} and {new_dir} are not runs of one experiment ({'; '.join(differences)}); "
            "their figures would not say whether a change regressed (--force compares them anyway)"
        )
    lanes = [lane for lane in LANES if lane in base.figures and lane in new.figures]
    figures = []
    for lane in lanes:
        for name, metric, stat, worse_up in FIGURES:
            b = base.figures[lane].estimate(metric, stat)
            n = new.figures[lane].estimate(metric, stat)
            change, reason = decide(b, n, max_regression, higher_is_worse=worse_up, figure=name, stat=stat)
            figures.append(
                FigureComparison(
                    lane=lane, figure=name, metric=metric, base=b, new=n, change=change, reason=reason
                )
            )
    return RunComparison(
        base_dir=base_dir,
        new_dir=new_dir,
        scenario=base.scenario.name,
        max_regression=max_regression,
        figures=tuple(figures),
        verdicts=_verdict_pairs(base.verdicts, new.verdicts),
        differences=tuple(differences),
    )
