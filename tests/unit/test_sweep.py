"""doorbuster sweep without a stack: the section, its scaling, the trial scenarios, the
classifier, the plan, resume bookkeeping and the outputs from fake trial summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from harness.cli.main import main
from harness.config.scenarios import load_scenario
from harness.config.timescale import time_scaled
from harness.metrics.scrape import parse_page
from harness.records.summary import RunFacts, Summary, read_summary
from harness.run.collect import RunResult
from harness.run.progress import RunProgress
from harness.stack.control import Stack
from harness.sweep.clean import busy_gauges
from harness.sweep.directory import SweepDir, TrialRecord
from harness.sweep.grid import Cell, grid_cells, grid_record, trial_scenario
from harness.sweep.outcomes import TrialOutcome, classify_lane, summarise_cell
from harness.sweep.plan import next_trials
from harness.sweep.report import SweepTrial, as_written, cell_summaries, sweep_data, write_sweep
from harness.sweep.runner import TrialRunner, judge_sweep
from model.errors import ConfigError, ExitCode
from model.scenario import Scenario, SweepSection
from model.topology import Topology
from targets.metrics import DownstreamServerMetrics, SyncChainMetrics
from tests.unit.fake_stack import FakeStack
from tests.unit.progress_recorder import ProgressRecorder
from tests.unit.summaries import recovery_json, summary_json

BASE: dict[str, Any] = yaml.safe_load("""
name: storm
stack:
  chain: {payment: {latency_ms: 400}, email: {latency_ms: 800, concurrency: 8}}
  sync: {threads: 96, queue: 64}
load:
  stages:
    - {name: baseline, duration: 60s, rate: 6}
    - {name: steady, duration: 120s, rate: 6}
  impatient: {timeout: 10s, retries: 1}
chaos:
  - {name: email-slow, at: 60s, for: 30s, dependency: email, type: http_delay, attributes: {latency: 2000}}
  - {name: pay-slow, at: 100s, for: 10s, dependency: payment, type: latency, attributes: {latency: 300}}
metastability: {window: 60s, fraction: 0.8, smoothing: 5s}
expectations:
  - "sync does not recover within 60s after email-slow"
  - "no lost orders"
sweep:
  step: email-slow
  loads: [3, 6, 9]
  attribute: latency
  values: [500, 1000, 2000]
  durations: [10s, 30s]
  trials: 1
  boundary_trials: 3
  observe: 60s
  time_scale: 0.5
  policies:
    - {name: seed, sync: {}}
    - {name: once, sync: {retry: {attempts: 1}}}
""")


def _scenario(**sweep: Any) -> Scenario:
    data = json.loads(json.dumps(BASE))
    data["sweep"].update(sweep)
    return Scenario.model_validate(data)


def _problem(tmp_path: Path, **sweep: Any) -> str:
    data = json.loads(json.dumps(BASE))
    data["sweep"].update(sweep)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as exc:
        load_scenario(str(path))
    return str(exc.value)


# -- the section --------------------------------------------------------------------------------
def test_the_section_is_typed_and_a_scenario_without_one_is_unchanged() -> None:
    section = _scenario().sweep
    assert isinstance(section, SweepSection)
    assert section.durations == (10.0, 30.0) and section.observe == 60.0 and section.max_time == 1800.0
    assert [p.name for p in section.policies] == ["seed", "once"]
    plain = dict(BASE)
    del plain["sweep"]
    assert Scenario.model_validate(plain).sweep is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"step": "nope"}, "sweep.step"),
        ({"attribute": "status"}, "sweep.attribute"),
        ({"loads": []}, "sweep.loads"),
        ({"loads": [3, -1]}, "loads"),
        ({"values": [500, 0]}, "values"),
        ({"durations": ["0s"]}, "durations"),
        ({"trials": 21}, "sweep.trials"),
        ({"trials": 0}, "sweep.trials"),
        ({"observe": "2s"}, "sweep.observe"),
        ({"attribute": None}, "attribute and values go together"),
        ({"attribute": None, "values": [], "durations": []}, "durations"),
        ({"policies": [{"name": "bad", "sync": {"threads": 0}}]}, "sweep.policies.0 (bad): sync.threads"),
        ({"policies": [{"name": "a"}, {"name": "a"}]}, "policies: names must be unique"),
    ],
)
def test_bad_sections_are_refused_naming_the_field(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    message = _problem(tmp_path, **change)
    assert named in message and "s.yaml" in message


def test_the_cli_refuses_a_scenario_without_a_sweep_with_exit_2(tmp_path: Path) -> None:
    cli = ["--state-dir", str(tmp_path / "state")]
    assert main([*cli, "sweep", "black-friday", "--out", str(tmp_path / "out")]) == ExitCode.USAGE
    assert main([*cli, "sweep", "retry-storm", "--max-time", "0s"]) == ExitCode.USAGE
    assert main([*cli, "sweep", "retry-storm", "--max-trials", "0"]) == ExitCode.USAGE
    assert not (tmp_path / "out").exists()


def test_time_scaling_scales_the_grid_faithfully() -> None:
    scaled = time_scaled(_scenario(), 0.5)
    section = scaled.sweep
    assert section is not None
    assert section.loads == (6.0, 12.0, 18.0)  # rates / S
    assert section.values == (250.0, 500.0, 1000.0)  # http_delay latency is a time
    assert section.durations == (5.0, 15.0) and section.observe == 30.0
    toxic = time_scaled(_scenario(step="pay-slow", values=[333, 1001]), 0.5).sweep
    assert toxic is not None and toxic.values == (166.0, 500.0)  # Toxiproxy: whole ms, as the step's own


def test_the_shipped_default_sweep_is_time_scaled() -> None:
    storm, _ = load_scenario("retry-storm")
    assert storm.sweep is not None and storm.sweep.time_scale == 0.33
    assert len(grid_cells(storm.sweep)) == 9


# -- the trials ---------------------------------------------------------------------------------
def test_a_trial_is_a_baseline_the_one_step_and_the_observation_window() -> None:
    scenario = _scenario()
    cell = Cell(policy="once", load=9.0, value=1000.0, duration=10.0)
    trial = trial_scenario(scenario, "latency", cell)
    assert [(s.name, s.duration, s.rate) for s in trial.load.stages] == [
        ("baseline", 60.0, 9.0),
        ("after", 10.0 + 60.0 + 15.0, 9.0),  # and a quarter of the window for a late removal
    ]
    (step,) = trial.chaos
    assert (step.name, step.at, step.for_, step.attributes) == ("email-slow", 60.0, 10.0, {"latency": 1000.0})
    assert trial.metastability.window == 60.0
    assert [e.text for e in trial.expectations] == ["no lost orders"]
    assert trial.sweep is None
    assert trial.stack.sync.retry.attempts == 1 and trial.stack.sync.threads == 96  # overlay, not replace
    seed = trial_scenario(scenario, "latency", Cell(policy="seed", load=3.0, value=500.0, duration=None))
    assert seed.stack.sync == scenario.stack.sync and seed.chaos[0].for_ == 30.0


def test_the_grid_is_every_policy_load_value_and_duration() -> None:
    cells = grid_cells(_scenario().sweep)  # type: ignore[arg-type]
    assert len(cells) == 2 * 3 * 3 * 2
    assert cells[0] == Cell(policy="seed", load=3.0, value=500.0, duration=10.0)
    assert len({c.id for c in cells}) == len(cells)
    assert Cell.from_json(cells[5].as_json()) == cells[5]


# -- the classifier -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reading", "outcome", "reason"),
    [
        ({"outcome": "recovered", "dipped": False}, "stable", None),
        ({"outcome": "recovered", "dipped": True}, "recovered", None),
        ({"outcome": "metastable", "dipped": True, "reason": "below"}, "metastable", None),
        (
            {"outcome": "recovered", "dipped": None, "dip_reason": "no arrivals"},
            "undetermined",
            "no arrivals",
        ),
        ({"outcome": "recovered"}, "undetermined", "does not say whether"),
        ({"outcome": "not_recovered", "reason": "offered load rose"}, "undetermined", "offered load rose"),
        ({"outcome": "undetermined", "reason": "only 3 s judged"}, "undetermined", "only 3 s judged"),
        (None, "undetermined", "no recovery reading"),
        ({}, "undetermined", "no recovery reading"),
    ],
)
def test_each_trial_is_classified_per_lane(reading: Any, outcome: str, reason: str | None) -> None:
    result = classify_lane(reading)
    assert result.outcome == outcome
    if reason is None:
        assert result.reason is None
    else:
        assert result.reason is not None and reason in result.reason


def test_a_cell_takes_the_most_frequent_determined_outcome_a_tie_the_worse() -> None:
    m, r, s, u = (TrialOutcome(o) for o in ("metastable", "recovered", "stable", "undetermined"))
    tie = summarise_cell([r, m, u])
    assert tie.outcome == "metastable" and tie.tipped_share == 0.5 and tie.outcomes["undetermined"] == 1
    assert summarise_cell([s, s, m]).outcome == "stable"
    assert summarise_cell([s, s, m]).tipped_share == 0.333
    assert summarise_cell([s, r]).outcome == "recovered"
    none = summarise_cell([TrialOutcome("undetermined", "a"), TrialOutcome("undetermined", "b")])
    assert none.outcome == "undetermined" and none.tipped_share is None and none.reasons == ("a", "b")
    assert summarise_cell([]).outcome == "not run"


# -- the plan -----------------------------------------------------------------------------------
def _section(**change: Any) -> SweepSection:
    data: dict[str, Any] = {"step": "email-slow", "loads": [3, 6], "attribute": "latency",
                            "values": [500, 2000], "observe": "60s"}  # fmt: skip
    return SweepSection.model_validate({**data, **change})


def _summaries(table: dict[tuple[float, float], str]) -> Any:
    return lambda cell: {
        "sync": summarise_cell([TrialOutcome(table[(cell.load, cell.value)])])  # type: ignore[arg-type]
        if (cell.load, cell.value) in table
        else summarise_cell([])
    }


def test_the_plan_runs_the_grid_then_the_boundary_then_bisects() -> None:
    section = _section(trials=1, boundary_trials=2, refine=1)
    grid = grid_cells(section)
    assert next_trials(section, {}, _summaries({})) == [(c, 1) for c in grid]
    done = dict.fromkeys(grid, 1)
    outcomes = {
        (3.0, 500.0): "stable",
        (3.0, 2000.0): "stable",
        (6.0, 500.0): "stable",
        (6.0, 2000.0): "metastable",
    }
    boundary = next_trials(section, done, _summaries(outcomes))
    # (6, 2000) differs from (6, 500) and from (3, 2000); they from it; (3, 500) has no other neighbour
    assert sorted((c.load, c.value) for c, _ in boundary) == [(3.0, 2000.0), (6.0, 500.0), (6.0, 2000.0)]
    assert {r for _, r in boundary} == {2}
    done.update({c: 2 for c, _ in boundary})
    refine = next_trials(section, done, _summaries(outcomes))
    assert [(c.load, c.value, r) for c, r in refine] == [(6.0, 1250.0, 1)]
    done[refine[0][0]] = 1
    outcomes[(6.0, 1250.0)] = "metastable"
    assert next_trials(section, done, _summaries(outcomes)) == []  # one bisection step asked for


def test_stable_beside_recovered_is_no_boundary_only_a_tipping_point_is() -> None:
    section = _section(trials=1, boundary_trials=2)
    done = dict.fromkeys(grid_cells(section), 1)
    outcomes = {(3.0, 500.0): "stable", (3.0, 2000.0): "recovered", (6.0, 500.0): "stable"}
    outcomes[(6.0, 2000.0)] = "recovered"
    assert next_trials(section, done, _summaries(outcomes)) == []
    outcomes[(6.0, 2000.0)] = "metastable"
    boundary = next_trials(section, done, _summaries(outcomes))
    assert sorted((c.load, c.value) for c, _ in boundary) == [(3.0, 2000.0), (6.0, 500.0), (6.0, 2000.0)]


def test_a_finished_trial_is_not_planned_again() -> None:
    section = _section(trials=2)
    grid = grid_cells(section)
    plan = next_trials(section, {grid[0]: 1, grid[1]: 2}, _summaries({}))
    assert (grid[0], 1) not in plan and (grid[0], 2) in plan and all(c != grid[1] for c, _ in plan)


# -- resume bookkeeping -------------------------------------------------------------------------
def _record(cell: Cell, repeat: int = 1, status: str = "counted") -> TrialRecord:
    return TrialRecord(cell=cell, repeat=repeat, status=status, started_at=1.0e9, duration_s=30.0)  # type: ignore[arg-type]


def test_a_sweep_directory_resumes_only_the_same_grid(tmp_path: Path) -> None:
    scenario = time_scaled(_scenario(), 0.5)
    root = SweepDir(tmp_path / "sweep")
    assert root.open(grid_record(scenario)) == []
    cell = grid_cells(scenario.sweep)[0]  # type: ignore[arg-type]
    root.write_trial(_record(cell))
    partial = root.trial_dir(cell, 2)
    partial.mkdir(parents=True)
    (partial / "requests.jsonl").write_text("{}\n")
    assert root.open(grid_record(scenario)) == [partial]  # same grid: resumed, the partial trial gone
    assert not partial.exists() and [r.cell for r, _ in root.finished()] == [cell]
    with pytest.raises(ConfigError, match=r"another grid.*loads"):
        root.open(grid_record(time_scaled(_scenario(loads=[3, 6]), 0.5)))
    with pytest.raises(ConfigError, match=r"another grid.*time_scale"):
        root.open(grid_record(time_scaled(_scenario(), 0.4)))
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("")
    with pytest.raises(ConfigError, match="not a sweep"):
        SweepDir(other).open(grid_record(scenario))


def test_a_spoiled_trial_record_is_refused_naming_it(tmp_path: Path) -> None:
    root = SweepDir(tmp_path)
    path = root.trials_dir / "c" / "1" / "trial.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"status": "maybe"}')
    with pytest.raises(ConfigError, match=r"trial\.json: not a sweep's trial record"):
        root.finished()


# -- outputs ------------------------------------------------------------------------------------
def _summary(sync: dict[str, Any], ladder: dict[str, Any] | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = summary_json(
        metastability={
            "sync": recovery_json("sync", **sync),
            "async": recovery_json("async", outcome="recovered", dipped=False, recovery_s=0.0),
        },
        verdicts=[{"expectation": "no lost orders", "passed": True, "observed": "0 lost of 9 accepted"}],
    )
    if ladder is not None:
        summary["ladder"] = {"sync": ladder}
    return summary


LADDER = {
    "policy": "seed", "slow_hop": "email",
    "amplification": {"during": 5.2, "after": 4.9, "theory": 6.0},
    "shoppers_failed": 412, "shoppers": 900, "recovery_s": None, "outcome": "metastable",
}  # fmt: skip


def _fake_sweep(tmp_path: Path) -> tuple[SweepDir, list[Cell]]:
    scenario = _scenario(durations=[], values=[500, 2000], loads=[3, 6])
    root = SweepDir(tmp_path / "sweep")
    root.open(grid_record(scenario))
    cells = [c for c in grid_cells(scenario.sweep) if c.policy == "seed"]  # type: ignore[arg-type]
    meta = {"outcome": "metastable", "dipped": True, "recovery_s": None, "reason": "below"}
    fakes = {
        cells[0]: [_summary({"outcome": "recovered", "dipped": False, "recovery_s": 0.0})],
        cells[1]: [
            _summary({"outcome": "recovered", "dipped": True, "recovery_s": 4.0}),
            _summary(meta, LADDER),
        ],
        cells[2]: [_summary({"outcome": "undetermined", "reason": "only 3 s judged"})],
    }
    for cell, summaries in fakes.items():
        for repeat, summary in enumerate(summaries, 1):
            root.write_trial(_record(cell, repeat))
            (root.trial_dir(cell, repeat) / "summary.json").write_text(json.dumps(summary))
    root.write_trial(_record(cells[0], 2, status="dirty"))
    return root, cells


def _trials(root: SweepDir) -> list[SweepTrial]:
    return [
        SweepTrial(
            record=r,
            run=str(p.relative_to(root.root)),
            summary=read_summary(p / "summary.json") if (p / "summary.json").exists() else None,
        )
        for r, p in root.finished()
    ]


def test_sweep_json_has_the_issues_shape_with_every_cell_of_the_grid(tmp_path: Path) -> None:
    root, cells = _fake_sweep(tmp_path)
    grid = json.loads((root.root / "grid.json").read_text())
    data = sweep_data(grid, grid_cells(SweepSection.model_validate({**BASE["sweep"], "durations": [], "loads": [3, 6], "values": [500, 2000]})), _trials(root), complete=False, stopped="the time bound")  # fmt: skip
    assert set(data) >= {"grid", "lanes"} and set(data["lanes"]) == {"sync", "async"}
    assert data["grid"]["loads"] == [3.0, 6.0] and "base" not in data["grid"]
    assert data["dirty_trials"] == 1 and data["trials_run"] == 5
    sync = {(e["policy"], e["load"], e["trigger"]["latency"]): e for e in data["lanes"]["sync"]}
    assert len(sync) == 8  # 2 policies x 2 loads x 2 values, run or not
    # in the grid's policy order, not by name: a ladder's seed comes first
    assert list(dict.fromkeys(e["policy"] for e in data["lanes"]["sync"])) == ["seed", "once"]
    for e in data["lanes"]["sync"]:
        assert {
            "load",
            "trigger",
            "outcome",
            "trials",
            "outcomes",
            "tipped_share",
            "reasons",
            "policy",
        } <= set(e)
    first = sync[("seed", 3.0, 500.0)]
    assert (first["outcome"], first["trials"], first["dirty_runs"]) == (
        "stable",
        1,
        ["trials/" + cells[0].id + "/2"],
    )
    second = sync[("seed", 3.0, 2000.0)]
    assert second["outcome"] == "metastable" and second["tipped_share"] == 0.5  # a tie goes to the worse
    assert second["outcomes"] == {"stable": 0, "recovered": 1, "metastable": 1, "undetermined": 0}
    assert second["ladder"] == [None, LADDER] and second["recovery_s"] == [4.0, None]
    assert sync[("seed", 6.0, 500.0)]["reasons"] == ["the recovery detector could not tell: only 3 s judged"]
    assert sync[("once", 6.0, 2000.0)]["outcome"] == "not run"
    assert cell_summaries(cells[1], _trials(root), ("async",))["async"].outcome == "stable"


def test_map_and_page_are_written_from_the_trials_and_judge_rewrites_them(tmp_path: Path) -> None:
    root, cells = _fake_sweep(tmp_path)
    result = judge_sweep(root.root)  # no trial has a ledger: nothing to re-judge, outputs rewritten
    for name in ("sweep.json", "map.png", "sweep.html"):
        assert (root.root / name).stat().st_size > 0
    assert (root.root / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (root.root / "sweep.html").read_text()
    assert f'href="trials/{cells[1].id}/2/report.html"' in page and "data:image/png;base64," in page
    assert "Retry-policy ladder" in page and "not measured" in page
    assert "<td>5.20</td><td>4.90</td><td>6.00</td>" in page
    assert "412 of 900" in page
    assert result.data["lanes"]["sync"][0]["outcome"] in (
        "stable",
        "recovered",
        "metastable",
        "undetermined",
        "not run",
    )
    assert result.open_cells > 0  # undetermined and not-run cells leave the map open
    cli = ["--state-dir", str(tmp_path / "state")]
    assert main([*cli, "judge", str(root.root)]) == ExitCode.EXPECTATION_FAILED
    assert main([*cli, "judge", str(root.root), "--json"]) == ExitCode.USAGE
    write_sweep(root.root, result.data)
    assert json.loads((root.root / "sweep.json").read_text()) == result.data


# -- a clean stack ------------------------------------------------------------------------------
def test_every_busy_gauge_of_a_real_exposition_is_named_and_an_idle_one_is_not() -> None:
    registry = CollectorRegistry()
    sync = SyncChainMetrics(registry, "sync")
    server = DownstreamServerMetrics(registry)
    sync.pool_busy.labels("sync").set(0)
    sync.pool_queued.labels("sync").set(0)
    sync.calls.breaker_state.labels("sync", "email").set(0)
    server.inflight.labels("sync", "email").set(0)
    server.capacity.labels("sync", "email").set(8)  # a capacity is not work
    assert busy_gauges(parse_page(generate_latest(registry).decode(), process="p")) == []
    sync.pool_busy.labels("sync").set(3)
    server.queued.labels("sync", "email").set(40)
    sync.calls.breaker_state.labels("sync", "email").set(2)
    reasons = busy_gauges(parse_page(generate_latest(registry).decode(), process="p"))
    assert len(reasons) == 3
    assert any("pool threads busy" in r and "= 3" in r for r in reasons)
    assert any("requests queued" in r and "= 40" in r for r in reasons)
    assert any("circuit breaker not closed" in r for r in reasons)


def test_boundary_neighbours_are_along_each_trigger_axis() -> None:
    section = _section(loads=[3], durations=["10s", "30s"], boundary_trials=2)
    grid = grid_cells(section)
    tipped = Cell(policy=None, load=3.0, value=2000.0, duration=30.0)

    def outcomes(cell: Cell) -> Any:
        return {"sync": summarise_cell([TrialOutcome("metastable" if cell == tipped else "stable")])}

    plan = next_trials(section, dict.fromkeys(grid, 1), outcomes)
    assert sorted((c.value, c.duration) for c, _ in plan) == [(500.0, 30.0), (2000.0, 10.0), (2000.0, 30.0)]


# -- trials on a clean stack --------------------------------------------------------------------
def _runner(tmp_path: Path, dirt: list[list[str]], runs: list[Path], *, interrupted: bool = False) -> Any:
    scenario = _scenario(settle=0.01, policies=[])
    root = SweepDir(tmp_path / "sweep")
    root.open(grid_record(scenario))
    stack = FakeStack(tmp_path / "state")

    def inspect(topology: Topology, since: float) -> list[str]:
        return dirt.pop(0) if dirt else []

    def run(trial: Scenario, run_dir: Path, stack: Stack, progress: RunProgress) -> RunResult:
        runs.append(run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "requests.jsonl").write_text("")
        facts = RunFacts(t0=0.0, interrupted=interrupted)
        return RunResult(
            run_dir=run_dir, summary=Summary(scenario="s", duration_s=1.0, lanes={}, passed=True, run=facts)
        )

    runner = TrialRunner(
        scenario,
        root,
        stack,
        inspect=inspect,
        reset_faults=lambda t, p: None,
        run=run,
    )
    return runner, root, stack


def test_a_stack_that_stays_dirty_is_restarted_and_the_trial_recorded_dirty_not_run(tmp_path: Path) -> None:
    runs: list[Path] = []
    busy = ["order-sync: pool threads busy {'lane': 'sync'} = 3"]
    runner, root, stack = _runner(tmp_path, [busy] * 10, runs)
    cell = grid_cells(runner.section)[0]
    notes = ProgressRecorder()
    assert runner.run_one(cell, 1, notes) is True
    ((record, _),) = root.finished()
    assert record.status == "dirty" and record.dirt == tuple(busy) and record.restarts == 2
    assert stack.downs == 2 and runs == []  # prepared twice, each with a restart; never run
    assert any("restarting it" in line for line in notes.notes)


def test_a_stack_clean_after_a_restart_runs_the_trial_and_counts_it(tmp_path: Path) -> None:
    runs: list[Path] = []
    unfinished = ["order-async: 3 order(s) of the last trial unfinished"]
    runner, root, stack = _runner(tmp_path, [unfinished, unfinished], runs)  # past the settle window
    cell = grid_cells(runner.section)[0]
    assert runner.run_one(cell, 1, ProgressRecorder()) is True
    ((record, path),) = root.finished()
    assert record.status == "counted" and record.restarts == 1 and stack.downs == 1
    assert runs == [root.trial_dir(cell, 1)] == [path]


def test_an_interrupted_trial_leaves_no_directory_and_stops(tmp_path: Path) -> None:
    runs: list[Path] = []
    runner, root, _ = _runner(tmp_path, [], runs, interrupted=True)
    cell = grid_cells(runner.section)[0]
    assert runner.run_one(cell, 1, ProgressRecorder()) is False
    assert runs and not runs[0].exists() and root.finished() == []


def test_a_scaled_sweep_shows_its_cells_as_the_section_wrote_them() -> None:
    storm = time_scaled(load_scenario("retry-storm")[0], 0.33)
    grid = grid_record(storm)
    cell = max(grid_cells(storm.sweep), key=lambda c: (c.load, c.value or 0))  # type: ignore[arg-type]
    assert cell.load == pytest.approx(6 / 0.33) and cell.value == 2640.0  # what the trial ran
    written = as_written(grid, cell.load, cell.trigger(grid["attribute"]))
    assert written == {"load": pytest.approx(6.0), "trigger": {"latency": pytest.approx(8000, rel=1e-3)}}
