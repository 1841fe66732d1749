"""The generator's health figures, computed from readings passed in: no Locust running."""

from __future__ import annotations

import json
import random
import re
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from harness.analysis.generator import CPU_SHARE_LIMIT, LOOP_LAG_LIMIT_S, SEND_LAG_FLOOR_S, SEND_LAG_LIMIT_S
from harness.config.files import read_text
from harness.load.arrivals import arrival_times
from harness.load.exporter import LoadCollector
from harness.load.generator_health import (
    CpuReading,
    GeneratorHealth,
    cpu_share,
    never_sent,
    window_percentile,
)
from harness.load.generator_log import GeneratorLog
from harness.load.request_log import RequestLog
from harness.load.schedule import ArrivalSchedule, DueArrivals
from harness.metrics.panels import DASHBOARDS, panels_for
from harness.records.generator import GeneratorSample, read_generator_samples
from model import metric_names as names
from model.errors import ConfigError
from model.scenario import LoadSpec, Stage
from tests.unit.test_load_exporter import Stats, View


def _brute_force_due(stages: list[tuple[float, float]], elapsed: float, segment: int, segments: int) -> int:
    return sum(1 for t in arrival_times(stages, segment, segments) if t <= elapsed)


def _walked_due(stages: list[tuple[float, float]], elapsed: float, segment: int, segments: int) -> int:
    due = DueArrivals((t, ("sync",)) for t in arrival_times(stages, segment, segments))
    due.by(elapsed / 2)  # asked before, as the sampler does: counting goes on from there
    return due.by(elapsed)


@pytest.mark.parametrize("seed", range(40))
def test_arrivals_due_counts_what_the_schedule_places_by_then(seed: int) -> None:
    rng = random.Random(seed)
    stages = [
        (rng.choice([0.5, 1.0, 2.5]), rng.choice([0.0, 1.0, 3.0, 7.5, 40.0]))
        for _ in range(rng.randint(1, 4))
    ]
    segments = rng.randint(1, 3)
    total = sum(d for d, _ in stages)
    points = [rng.uniform(-1, total + 1) for _ in range(20)] + list(arrival_times(stages))[:20]
    for elapsed in points:
        for segment in range(segments):
            assert _walked_due(stages, elapsed, segment, segments) == _brute_force_due(
                stages, elapsed, segment, segments
            ), (stages, elapsed, segment, segments)


def _schedule(start: float | None) -> ArrivalSchedule:
    schedule = ArrivalSchedule(threading.Event(), seed=5)
    if start is not None:
        schedule.begin(start)
    return schedule


def test_due_counts_one_arrival_per_lane_and_nothing_for_a_closed_model() -> None:
    load = LoadSpec(lanes=("sync", "async"), stages=(Stage(name="s", duration=10.0, rate=5.0),))
    assert _schedule(100.0).due(load, 101.0) == 2 * 6  # 0, 0.2, ..., 1.0 s: six arrival times
    assert _schedule(100.0).due(load, 1000.0) == 2 * 50  # never more than the schedule holds
    assert _schedule(None).due(load, 101.0) == 0  # no start yet
    assert _schedule(100.0).due(load.model_copy(update={"model": "closed"}), 101.0) == 0


def test_due_follows_a_poisson_schedule_too() -> None:
    load = LoadSpec(arrivals="poisson", lanes=("sync",), stages=(Stage(name="s", duration=10.0, rate=50.0),))
    schedule = _schedule(100.0)
    offsets = [t for t, _ in schedule.arrivals(load)]
    assert schedule.due(load, 104.0) == sum(1 for t in offsets if t <= 4.0)
    assert schedule.due(load, 200.0) == len(offsets)


def test_cpu_share_is_cpu_time_over_wall_time() -> None:
    assert cpu_share(CpuReading(cpu_s=2.0, wall_s=5.0), CpuReading(cpu_s=3.8, wall_s=7.0)) == pytest.approx(
        0.9
    )
    assert cpu_share(CpuReading(cpu_s=2.0, wall_s=5.0), CpuReading(cpu_s=2.0, wall_s=5.0)) == 0.0
    reading = CpuReading.now()
    assert reading.cpu_s > 0 and reading.wall_s > 0


def test_the_window_percentile_is_the_nearest_rank() -> None:
    lags = [i / 1000 for i in range(1, 201)]  # 1 .. 200 ms
    assert window_percentile(lags, 0.99) == 0.198
    assert window_percentile([5.0], 0.99) == 5.0
    assert window_percentile([], 0.99) is None


def test_never_sent_is_what_was_due_and_neither_sent_nor_dropped() -> None:
    assert never_sent(due=100, sent=90, dropped=4) == 6
    assert never_sent(due=10, sent=12, dropped=0) == 0  # a closed model's shoppers are not scheduled


def test_a_sample_covers_its_window_and_starts_the_next() -> None:
    health = GeneratorHealth("1", reading=CpuReading(cpu_s=10.0, wall_s=0.0), now=1000.0)
    for lag in [0.001] * 98 + [0.2, 0.5]:
        health.on_sent("sync", lag)
    health.on_dropped()
    health.on_timer(0.003)
    health.on_timer(0.25)
    first = health.sample(now=1001.0, reading=CpuReading(cpu_s=10.5, wall_s=1.0), due=104, stopped=False)
    assert (first.worker, first.window_s, first.sends, first.send_lag_p99_s, first.send_lag_max_s) == (
        "1",
        1.0,
        100,
        0.2,
        0.5,
    )
    assert (first.loop_lag_max_s, first.cpu_share) == (0.25, 0.5)
    assert (first.due, first.sent, first.dropped, first.never_sent) == (104, 100, 1, 0)  # 3 late, not lost
    last = health.sample(now=1001.5, reading=CpuReading(cpu_s=10.5, wall_s=1.5), due=110, stopped=True)
    assert (last.sends, last.send_lag_p99_s, last.loop_lag_max_s, last.cpu_share) == (0, None, 0.0, 0.0)
    assert (last.sent, last.never_sent, last.stopped) == (100, 9, True)
    assert health.stopped  # the sampler takes no more until the next test
    health.reset(reading=CpuReading(cpu_s=0.0, wall_s=2.0), now=1002.0)
    assert not health.stopped and health.sent == 0
    assert health.send_lag.buckets("1", "sync")[-1] == ("+Inf", 100)


def test_a_sample_is_written_and_read_back_and_a_bad_one_refused(tmp_path: Path) -> None:
    sample = GeneratorSample(
        worker="0", t=5.0, window_s=1.0, sends=0, send_lag_p99_s=None, send_lag_max_s=None,
        loop_lag_max_s=0.01, cpu_share=0.2, due=0, sent=0, dropped=0, never_sent=0, stopped=False,
    )  # fmt: skip
    log = GeneratorLog(tmp_path / "generator.jsonl")
    log.add([sample], [], "0")
    log.take_worker_rows([{**sample.to_json(), "worker": "1", "sends": 2, "send_lag_p99_s": 0.1}], [], "1")
    log.close()
    assert [s.worker for s in read_generator_samples(tmp_path / "generator.jsonl")] == ["0", "1"]
    assert set(log.latest) == {"0", "1"}
    bad = {**sample.to_json(), "sends": 3}  # sends without a lag
    (tmp_path / "bad.jsonl").write_text(read_text(tmp_path / "generator.jsonl") + json.dumps(bad) + "\n")
    with pytest.raises(ConfigError, match=r"bad\.jsonl: line 3: not a generator sample"):
        read_generator_samples(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="unknown field"):
        GeneratorSample.from_json({**sample.to_json(), "extra": 1})


def _exporting_two_generators(tmp_path: Path) -> CollectorRegistry:
    """The exporter of two generators: "0" stopped with five arrivals never sent, "1" sending."""
    health = {w: GeneratorHealth(w, reading=CpuReading(cpu_s=0.0, wall_s=0.0), now=0.0) for w in ("0", "1")}
    health["1"].on_sent("sync", 0.003)
    health["1"].on_sent("async", 2.5)
    health["1"].on_timer(0.4)
    generators = GeneratorLog(tmp_path / "generator.jsonl")
    for worker, h in health.items():
        sample = h.sample(now=1.0, reading=CpuReading(cpu_s=0.7, wall_s=1.0), due=5, stopped=worker == "0")
        generators.add([sample], h.send_lag.snapshot(), worker)
    load = LoadSpec(stages=(Stage(name="s", duration=1.0, rate=1.0),))
    registry = CollectorRegistry()
    log = RequestLog(("sync", "async"), tmp_path / "r.jsonl", is_worker=True)
    registry.register(LoadCollector(View(Stats({})), load, log, generators))
    return registry


def test_the_exporter_exports_each_generators_health_by_worker(tmp_path: Path) -> None:
    registry = _exporting_two_generators(tmp_path)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value(names.GENERATOR_EVENT_LOOP_LAG, worker="1") == 0.4
    assert value(names.GENERATOR_CPU_SHARE, worker="0") == pytest.approx(0.7)
    assert value(names.GENERATOR_ARRIVALS_DUE, worker="1") == 5
    assert value(names.GENERATOR_ARRIVALS_SENT, worker="1") == 2
    assert value(names.GENERATOR_ARRIVALS_NEVER_SENT, worker="0") == 5  # stopped with all five unsent
    assert value(names.GENERATOR_ARRIVALS_NEVER_SENT, worker="1") == 0
    assert value(names.GENERATOR_ARRIVALS_DROPPED, worker="1") == 0
    assert value(names.GENERATOR_SEND_LAG + "_bucket", worker="1", lane="sync", le="0.005") == 1
    assert value(names.GENERATOR_SEND_LAG + "_bucket", worker="1", lane="async", le="2.0") == 0
    assert value(names.GENERATOR_SEND_LAG + "_count", worker="1", lane="async") == 1


def test_the_catalogue_has_generator_health_panels_per_worker_on_what_the_exporter_exports(
    tmp_path: Path,
) -> None:
    """Grafana's load dashboard, every system's dashboard and the live view draw them."""
    exported = {family.name for family in _exporting_two_generators(tmp_path).collect()}
    exported |= {name + "_total" for name in exported}  # a counter family is named without it
    generator = [p for p in panels_for(builtin=False) if p.key.startswith("generator_")]
    assert {p.key for p in generator} == {"generator_send_lag", "generator_loop_lag", "generator_cpu",
                                          "generator_unsent"}  # fmt: skip
    read: set[str] = set()
    for p in generator:
        assert p.dashboard in DASHBOARDS and p.any_system and not p.in_report, p.key
        for query in p.queries:
            used = set(re.findall(r"doorbuster_generator_\w+", query.expr))
            assert used, query.expr
            read |= {name.removesuffix("_bucket") for name in used}
            assert query.legend_labels == {"worker"}, query.legend  # a line per generator process
    assert read <= exported
    assert read >= {names.GENERATOR_SEND_LAG, names.GENERATOR_EVENT_LOOP_LAG, names.GENERATOR_CPU_SHARE,
                    names.GENERATOR_ARRIVALS_NEVER_SENT}  # fmt: skip
    limits = {value for p in generator for value, _ in p.thresholds}
    assert limits == {SEND_LAG_FLOOR_S, SEND_LAG_LIMIT_S, LOOP_LAG_LIMIT_S, CPU_SHARE_LIMIT}
