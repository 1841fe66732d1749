"""The run report's generator-health chart: its per-second series from made-up samples, the
gate's limits as its reference lines, a verdict the generator made undetermined linked to it,
and a run directory without ``generator.jsonl`` drawn without it, saying why."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from harness.analysis.generator import CPU_SHARE_LIMIT, LOOP_LAG_LIMIT_S, SEND_LAG_FLOOR_S, SEND_LAG_LIMIT_S
from harness.cli.main import main
from harness.records.generator import GeneratorSample
from harness.records.summary import Summary
from harness.report.charts import TimeAxis
from harness.report.generator_chart import GENERATOR_CHART, generator_facets, generator_part
from model.errors import ExitCode
from tests.unit.run_dirs import T0, steady_records, steady_scenario, write_run_dir
from tests.unit.summaries import summary_json

AXIS = TimeAxis(end=10.0, faults=(("slow", 3.0, 5.0),))


def _sample(worker: str, t: float, *, window_s: float = 1.0, lag: float | None = 0.001, loop: float = 0.002,
            cpu: float = 0.3, late: int = 0, never: int = 0, stopped: bool = False) -> GeneratorSample:  # fmt: skip
    """A sample of ``worker`` whose window ends ``t`` run seconds in."""
    due = int(t * 100)
    return GeneratorSample(worker=worker, t=T0 + t, window_s=window_s, sends=0 if lag is None else 100,
                           send_lag_p99_s=lag, send_lag_max_s=lag, loop_lag_max_s=loop, cpu_share=cpu,
                           due=due, sent=due - late - never, dropped=0, never_sent=never, stopped=stopped)  # fmt: skip


def test_each_process_has_a_value_per_second_from_the_samples_in_that_second() -> None:
    samples = [_sample("0", t, lag=t / 1000, loop=t / 100, cpu=t / 10, late=int(t)) for t in range(1, 6)]
    # Worker 1: two half-second windows in second 2 (the larger p99 and loop lag, the CPU
    # weighted by time, the later backlog), then nothing.
    samples += [_sample("1", 2.5, window_s=0.5, lag=0.2, loop=0.05, cpu=1.0, late=7),
                _sample("1", 3.0, window_s=0.5, lag=0.1, loop=0.3, cpu=0.5, late=3)]  # fmt: skip
    send, loop, cpu, unsent = generator_facets(samples, T0, AXIS)
    assert list(send.lines) == ["0", "1"]
    assert send.lines["0"][:5] == (0.001, 0.002, 0.003, 0.004, 0.005)
    assert loop.lines["0"][:5] == (0.01, 0.02, 0.03, 0.04, 0.05)
    assert [round(v, 6) for v in cpu.lines["0"][:5]] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert unsent.lines["0"][:5] == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert all(math.isnan(v) for v in send.lines["0"][5:])  # no sample: a gap, not a zero
    assert len(send.lines["0"]) == len(AXIS.centres()) == 10
    assert (send.lines["1"][2], loop.lines["1"][2], cpu.lines["1"][2], unsent.lines["1"][2]) == (
        0.2,
        0.3,
        0.75,
        3.0,
    )
    assert math.isnan(send.lines["1"][1]) and math.isnan(send.lines["1"][3])


def test_a_sample_taken_late_leaves_no_second_empty_and_counts_where_it_overlaps() -> None:
    # Windows 0-1.4 s (busy) and 1.4-3.0 s: second 1 has both, the CPU weighted by overlap.
    samples = [_sample("0", 1.4, window_s=1.4, cpu=1.0, loop=0.5), _sample("0", 3.0, window_s=1.6, cpu=0.0)]
    _, loop, cpu, _ = generator_facets(samples, T0, AXIS)
    assert loop.lines["0"][:3] == (0.5, 0.5, 0.002)
    assert [round(v, 6) for v in cpu.lines["0"][:3]] == [1.0, 0.4, 0.0]
    assert all(math.isnan(v) for v in cpu.lines["0"][3:])


def test_a_window_with_no_sends_has_no_send_lag_and_never_sent_is_marked_where_the_load_stopped() -> None:
    samples = [
        _sample("0", 1.0),
        _sample("0", 2.0, lag=None),
        _sample("0", 2.2, window_s=0.2, never=40, stopped=True),
    ]
    send, _, _, unsent = generator_facets(samples, T0, AXIS)
    assert send.lines["0"][0] == 0.001 and math.isnan(send.lines["0"][1])
    assert unsent.marks is not None and unsent.marks["0"][1] == 40
    assert unsent.marks["0"][0] == pytest.approx(2.2)  # where the load stopped, in run seconds
    assert generator_facets([_sample("0", 1.0)], T0, AXIS)[3].marks == {}


def test_the_chart_draws_the_gates_limits() -> None:
    send, loop, cpu, unsent = generator_facets([_sample("0", 1.0)], T0, AXIS)
    assert {v for v, _ in send.limits} == {SEND_LAG_LIMIT_S, SEND_LAG_FLOOR_S}
    assert [v for v, _ in loop.limits] == [LOOP_LAG_LIMIT_S]
    assert [v for v, _ in cpu.limits] == [CPU_SHARE_LIMIT]
    assert any("250 ms" in label for _, label in send.limits)
    assert unsent.limits == ()  # any arrival never sent is behind: marked, no line to pass


NO_GENERATOR = Summary.from_json(summary_json(t0=T0))


def test_a_run_directory_without_generator_samples_gets_no_chart_and_says_why(tmp_path: Path) -> None:
    part = generator_part(tmp_path, NO_GENERATOR, T0, AXIS)
    assert part.chart is None and "no generator.jsonl" in part.missing
    (tmp_path / "generator.jsonl").write_text("")
    part = generator_part(tmp_path, NO_GENERATOR, T0, AXIS)
    assert part.chart is None and "no sample" in part.missing
    assert not (tmp_path / GENERATOR_CHART).exists()


def test_a_verdict_the_generator_left_undetermined_links_to_its_chart(tmp_path: Path) -> None:
    scenario = steady_scenario("starved", seconds=10, expectations=["sync.checkout.p50 < 1s"])
    run_dir = write_run_dir(
        tmp_path / "run", scenario, steady_records("sync", 100, 0.1, lambda i: 0.01, lambda i: False)
    )
    # One generator process busy all along, its loop late: it was behind.
    samples = [_sample("0", float(t), cpu=0.99, loop=0.4) for t in range(1, 11)]
    (run_dir / "generator.jsonl").write_text("".join(json.dumps(s.to_json()) + "\n" for s in samples))
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    assert main(["--state-dir", str(no_stack), "judge", str(run_dir)]) == ExitCode.EXPECTATION_FAILED
    page = (run_dir / "report.html").read_text()
    assert "UNDETERMINED" in page and 'href="#generator"' in page and 'id="generator"' in page
    assert f'src="{GENERATOR_CHART}"' in page and "It fell behind in" in page
    with Image.open(run_dir / GENERATOR_CHART) as chart:
        assert chart.size[0] > 2 * chart.size[1]  # one figure, its panels two by two


def test_a_run_directory_without_generator_jsonl_is_reported_without_the_chart(tmp_path: Path) -> None:
    scenario = steady_scenario("old", seconds=10, expectations=["sync.error_rate < 50%"])
    run_dir = write_run_dir(
        tmp_path / "run", scenario, steady_records("sync", 100, 0.1, lambda i: 0.01, lambda i: False)
    )
    no_stack = tmp_path / "state-is-a-file"
    no_stack.write_text("")
    assert main(["--state-dir", str(no_stack), "judge", str(run_dir)]) == ExitCode.OK
    page = (run_dir / "report.html").read_text()
    assert "No generator-health chart: this run directory has no generator.jsonl" in page
    assert 'href="#generator"' not in page and not (run_dir / GENERATOR_CHART).exists()
