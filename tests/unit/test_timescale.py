"""A time-scaled scenario is the same experiment in S times its time (harness.config.timescale)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from harness.analysis.inputs import FaultWindow, Row, RunInputs
from harness.analysis.summary import analyse
from harness.config.scenarios import load_scenario, shipped_scenarios
from harness.config.timescale import time_scaled
from model.errors import ConfigError
from model.expectations import parse_expectation, time_scaled_expectation
from model.scenario import Scenario

MADE_UP: dict[str, Any] = yaml.safe_load("""
name: made-up
stack:
  chain: {payment: {latency_ms: 400}, email: {latency_ms: 800, concurrency: 8}}
  sync: {threads: 96}
load:
  stages:
    - {name: baseline, duration: 60s, rate: 6}
    - {name: rush, duration: 2m, rate: 3}
  think_time: 2s
  impatient: {timeout: 10s, retries: 2}
  poll: {initial: 1s, max: 5s, give_up: 240s}
  max_in_flight: 300
chaos:
  - {name: slow, at: 60s, for: 30s, dependency: email, type: latency,
     attributes: {latency: 2000, jitter: 50}, toxicity: 0.5}
  - {name: hang, at: 70s, for: 20s, dependency: email, type: http_delay, lanes: sync,
     attributes: {latency: 3000, jitter: 10, rate: 0.7}}
  - {name: errors, at: 90s, for: 10s, dependency: email, type: http_error,
     attributes: {rate: 0.3, status: 503}}
  - {name: closing, at: 100s, for: 10s, dependency: email, type: slow_close, attributes: {delay: 1000}}
  - {name: stall, at: 110s, for: 10s, dependency: email, type: timeout, attributes: {timeout: 4000}}
  - {name: reset, at: 120s, for: 10s, dependency: email, type: reset_peer, attributes: {timeout: 100}}
  - {name: sliced, at: 130s, for: 10s, dependency: email, type: slicer,
     attributes: {average_size: 64, size_variation: 8, delay: 1000}}
  - {name: narrow, at: 140s, for: 10s, dependency: email, type: bandwidth, attributes: {rate: 100}}
  - {name: cut, at: 150s, for: 10s, dependency: email, type: limit_data, attributes: {bytes: 4096}}
  - {name: gone, at: 160s, for: 20s, dependency: email, type: down}
metastability: {window: 60s, fraction: 0.8, smoothing: 5s}
drain_timeout: 180s
expectations:
  - "sync.checkout.p50 >= 1.8s at baseline"
  - "async.ack.p99 < 500ms during slow"
  - "sync.fulfillment.max <= 2s"
  - "sync.checkout.p99 of successes < 3s after slow"
  - "sync.throughput >= 4/s at baseline"
  - "async.goodput > 3 during slow"
  - "sync.error_rate > 20% during slow"
  - "async.error_rate < 0.05 fraction"
  - "async.checkout.p50 at most 20% above baseline during slow"
  - "async.checkout.p95 within 10% of baseline after slow"
  - "async backlog drains within 90s after slow"
  - "sync does not recover within 1m after slow"
  - "async recovers within 60s after gone"
  - "no lost orders"
  - "no duplicate side effects"
""")


def _made_up(**over: Any) -> Scenario:
    return Scenario.model_validate({**MADE_UP, **over})


def test_scale_1_is_the_scenario_itself() -> None:
    scenario = _made_up()
    assert time_scaled(scenario, 1.0) == scenario
    for name in shipped_scenarios():
        shipped, _ = load_scenario(name)
        assert time_scaled(shipped, 1.0) == shipped, name


def test_every_time_is_scaled_every_rate_inverted_and_every_count_kept() -> None:
    s = 0.25
    scaled = time_scaled(_made_up(), s)
    assert scaled.time_scale == s and scaled.stack.time_scale == s
    assert [(st.name, st.duration, st.rate) for st in scaled.load.stages] == [
        ("baseline", 15.0, 24.0), ("rush", 30.0, 12.0)
    ]  # fmt: skip
    load = scaled.load
    assert (load.think_time, load.impatient.timeout, load.impatient.retries) == (0.5, 2.5, 2)
    assert (load.poll.initial, load.poll.max, load.poll.give_up) == (0.25, 1.25, 60.0)
    assert load.max_in_flight == 300
    # finite capacities are counts: the same utilisation at 4x the rate and 1/4 the latency
    assert scaled.stack.sync.threads == 96 and scaled.stack.chain["email"].concurrency == 8
    assert scaled.stack.chain["email"].latency_ms == 800  # the stack applies its own time_scale
    chaos = {step.name: step for step in scaled.chaos}
    assert [(step.at, step.for_) for step in scaled.chaos] == [
        (15.0, 7.5), (17.5, 5.0), (22.5, 2.5), (25.0, 2.5), (27.5, 2.5), (30.0, 2.5), (32.5, 2.5),
        (35.0, 2.5), (37.5, 2.5), (40.0, 5.0),
    ]  # fmt: skip
    assert chaos["slow"].attributes == {"latency": 500, "jitter": 12} and chaos["slow"].toxicity == 0.5
    assert chaos["hang"].attributes == {"latency": 750, "jitter": 2.5, "rate": 0.7}
    assert chaos["errors"].attributes == {"rate": 0.3, "status": 503}
    assert chaos["closing"].attributes == {"delay": 250}
    assert chaos["stall"].attributes == {"timeout": 1000}
    assert chaos["reset"].attributes == {"timeout": 25}
    assert chaos["sliced"].attributes == {"average_size": 64, "size_variation": 8, "delay": 250}
    assert chaos["narrow"].attributes == {"rate": 400}  # KB/s: a rate
    assert chaos["cut"].attributes == {"bytes": 4096}
    for step in scaled.chaos:  # Toxiproxy takes whole numbers only
        if step.type not in ("http_delay", "http_error", "down"):
            assert all(float(v).is_integer() for v in step.attributes.values()), step
    meta = scaled.metastability
    assert (meta.window, meta.smoothing, meta.fraction) == (15.0, 1.25, 0.8)
    assert scaled.drain_timeout == 45.0


def test_the_expectations_are_scaled_in_value_and_in_text() -> None:
    scaled = time_scaled(_made_up(), 0.25)
    got = {e.text: e.value for e in scaled.expectations}
    assert got == {
        "sync.checkout.p50 >= 0.45s at baseline": 0.45,
        "async.ack.p99 < 125ms during slow": 0.125,
        "sync.fulfillment.max <= 0.5s": 0.5,
        "sync.checkout.p99 of successes < 0.75s after slow": 0.75,
        "sync.throughput >= 16/s at baseline": 16.0,
        "async.goodput > 12 during slow": 12.0,
        "sync.error_rate > 20% during slow": 0.2,
        "async.error_rate < 0.05 fraction": 0.05,
        "async.checkout.p50 at most 20% above baseline during slow": 0.2,
        "async.checkout.p95 within 10% of baseline after slow": 0.1,
        "async backlog drains within 22.5s after slow": 22.5,
        "sync does not recover within 0.25m after slow": 15.0,
        "async recovers within 15s after gone": 15.0,
        "no lost orders": None,
        "no duplicate side effects": None,
    }
    before = {e.text: e for e in _made_up().expectations}
    for original, after in zip(before.values(), scaled.expectations, strict=True):
        assert (after.kind, after.lane, after.metric, after.stat, after.op, after.window, after.mode) == (
            original.kind, original.lane, original.metric, original.stat, original.op, original.window,
            original.mode,
        )  # fmt: skip
        assert (after.negated, after.successes_only) == (original.negated, original.successes_only)


def test_an_expectation_scaled_back_is_itself() -> None:
    e = parse_expectation("sync.checkout.p99 of successes < 1.8s after slow")
    assert time_scaled_expectation(time_scaled_expectation(e, 0.3), 1 / 0.3) == e
    small = time_scaled_expectation(parse_expectation("async.ack.p50 < 1ms"), 0.001)
    assert small.text == "async.ack.p50 < 0.001ms" and small.value == pytest.approx(1e-6)


def test_a_closed_model_keeps_its_users_and_shortens_their_think_time() -> None:
    load = {**MADE_UP["load"], "model": "closed"}
    scaled = time_scaled(_made_up(load=load), 0.5)
    assert [st.rate for st in scaled.load.stages] == [6, 3]
    assert scaled.load.think_time == 1.0


def test_scaling_twice_composes_and_the_stack_follows() -> None:
    twice = time_scaled(time_scaled(_made_up(), 0.5), 0.5)
    once = time_scaled(_made_up(), 0.25)
    assert twice == once


def test_a_scale_that_would_break_a_bound_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"made-up at time scale 0\.001: load\.stages\.0\.rate"):
        time_scaled(_made_up(), 0.001)
    with pytest.raises(ConfigError, match="at most 10"):
        time_scaled(_made_up(), 0)


def test_smoothing_is_at_least_one_bin_of_the_scenario_s_time() -> None:
    with pytest.raises(ValueError, match=r"metastability\.smoothing: at least 1s"):
        _made_up(metastability={"smoothing": 0.5})
    assert time_scaled(_made_up(), 0.1).metastability.smoothing == pytest.approx(0.5)


# -- the recovery detector judges a scaled run at the same resolution in the run's own time --


def _recovery_run(scale: float) -> dict[str, Any]:
    """4 arrivals/s (x 1/scale) for 120 s (x scale), between the bins' edges; a trigger from
    30 s to 40 s; every arrival fails from 30 s to 48 s, and after it the first arrival of
    every fifth second: the lane recovers 8 s after the removal (windows of 20 arrivals with
    one failure hold 80%; a second with one failure of four does not)."""
    base = Scenario.model_validate(
        {
            "name": "made-up",
            "metastability": {"window": 40, "fraction": 0.8},
            "load": {
                "stages": [
                    {"name": "baseline", "duration": 30, "rate": 4},
                    {"name": "rest", "duration": 90, "rate": 4},
                ]
            },
            "chaos": [
                {
                    "name": "trigger",
                    "at": 30,
                    "for": 10,
                    "dependency": "email",
                    "type": "latency",
                    "attributes": {"latency": 1},
                }
            ],
            "expectations": [
                "sync recovers within 10s after trigger",
                "sync recovers within 7s after trigger",
            ],
        }
    )
    rows = []
    for i in range(120 * 4):
        t = (i + 0.5) / 4
        ok = t < 30 or (t >= 48 and not (int(t) % 5 == 4 and i % 4 == 0))
        rows.append(Row(t, t + 1.0, "sync", "checkout", 200 if ok else 504, 0, f"s{i}"))
    fault = FaultWindow(
        name="trigger", dependency="email", lanes=("sync",), type="latency", attributes={"latency": 1},
        start=30.0, end=40.0, applied=True,
    )  # fmt: skip
    scaled_rows = tuple(replace(r, intended=r.intended * scale, end=r.end * scale) for r in rows)
    scaled_fault = replace(fault, start=fault.start * scale, end=fault.end * scale)
    scenario = time_scaled(base, scale)
    inputs = RunInputs(scenario=scenario, rows=scaled_rows, faults=(scaled_fault,), load_end=120 * scale)
    return analyse(inputs).to_json()


@pytest.mark.parametrize("scale", [0.25, 0.3, 0.5])
def test_a_scaled_run_recovers_at_the_same_experiment_time(scale: float) -> None:
    unscaled = _recovery_run(1.0)
    scaled = _recovery_run(scale)
    one, other = unscaled["metastability"]["sync"], scaled["metastability"]["sync"]
    assert one["outcome"] == other["outcome"] == "recovered"
    assert one["recovery_s"] == 8.0
    assert other["recovery_s"] == pytest.approx(8.0 * scale)
    assert other["evidence"]["resolution_s"] == scale
    assert other["evidence"]["smoothing_s"] == pytest.approx(5 * scale)
    assert other["evidence"]["offered"] == one["evidence"]["offered"]
    assert other["evidence"]["window_rates"] == one["evidence"]["window_rates"]
    assert [v["outcome"] for v in scaled["verdicts"]] == [v["outcome"] for v in unscaled["verdicts"]]
    assert [v["outcome"] for v in unscaled["verdicts"]] == ["pass", "fail"]
    assert f"{8.0 * scale:g} s after trigger" in scaled["verdicts"][0]["observed"]
    assert scaled["time_scale"] == scale and unscaled["time_scale"] == 1.0
