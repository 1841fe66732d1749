from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.scenarios import load_scenario, shipped_scenarios
from harness.run.plan import scaled
from model.errors import ConfigError
from model.expectations import parse_expectation
from model.settings import RETRY_POLICIES

MINIMAL = """
name: tiny
load:
  stages:
    - {name: baseline, duration: 10s, rate: 2}
    - {name: peak, duration: 20s, rate: 5}
chaos:
  - {name: email-slow, at: 12s, for: 5s, dependency: email, type: latency, attributes: {latency: 100}}
expectations:
  - "sync.error_rate < 5% during email-slow"
  - "no lost orders"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_every_shipped_scenario_loads_and_names_what_the_issue_asks_for() -> None:
    names = shipped_scenarios()
    assert {
        "black-friday",
        "loan-application",
        "notification-fanout",
        "retry-storm",
        "retry-storm-fixed",
        "retry-ladder",
    } <= set(names)
    for name in names:
        scenario, _ = load_scenario(name)
        assert scenario.expectations, name
        assert scenario.chaos, name


def test_the_ladder_runs_retry_storms_trigger_with_every_sync_policy_the_seeds_first() -> None:
    ladder, _ = load_scenario("retry-ladder")
    storm, _ = load_scenario("retry-storm")
    assert ladder.sweep is not None
    assert (ladder.stack, ladder.load, ladder.chaos) == (storm.stack, storm.load, storm.chaos)
    assert [p.sync["retry"]["policy"] for p in ladder.sweep.policies] == list(RETRY_POLICIES)
    assert (ladder.sweep.loads, ladder.sweep.values) == ((6.0,), (2000.0,))


def test_black_friday_is_the_seed_checkout_and_at_most_five_minutes() -> None:
    scenario, _ = load_scenario("black-friday")
    assert scenario.duration_s <= 300
    assert scenario.stack.chain["email"].latency_ms == 800
    assert sum(d.latency_ms for d in scenario.stack.chain.values()) == 1850
    assert {s.name for s in scenario.chaos} == {"email-slow", "warehouse-down"}
    assert scenario.stack.time_scale == 1.0


def test_loan_application_keeps_credit_and_fraud_on_the_critical_path() -> None:
    scenario, _ = load_scenario("loan-application")
    assert scenario.stack.critical == ("credit", "fraud")
    assert scenario.stack.deferred == ("income", "employment", "email")
    assert 1000 <= scenario.stack.chain["credit"].latency_ms <= 3000
    assert 2000 <= scenario.stack.chain["income"].latency_ms <= 5000


def test_retry_storm_fixed_differs_only_by_jitter_and_breaker() -> None:
    naive, _ = load_scenario("retry-storm")
    fixed, _ = load_scenario("retry-storm-fixed")
    assert not naive.stack.sync.breaker.enabled and naive.stack.sync.retry.jitter == "none"
    assert fixed.stack.sync.breaker.enabled and fixed.stack.sync.retry.jitter == "full"
    assert naive.load == fixed.load and naive.chaos == fixed.chaos
    assert naive.stack.chain == fixed.stack.chain


def test_a_path_loads_and_windows_resolve(tmp_path: Path) -> None:
    scenario, _ = load_scenario(str(_write(tmp_path, MINIMAL)))
    assert scenario.duration_s == 30
    assert scenario.window("email-slow") == (12, 17)
    assert scenario.window("peak") == (10, 30)
    assert scenario.baseline_window() == (0, 10)
    peak = scenario.load.stage_at(11)
    assert peak is not None and peak.name == "peak"
    assert scenario.load.stage_at(31) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("rate: 2", "rate: -2"), "load.stages.0.rate"),
        (("duration: 10s", "duration: ten"), "load.stages.0.duration"),
        (("dependency: email", "dependency: emial"), "chaos.0"),
        (("type: latency", "type: latencyy"), "chaos.0.type"),
        (("at: 12s", "at: 29s"), "after the load"),
        (("during email-slow", "during nowhere"), "nowhere"),
        (('"no lost orders"', '"no lost ordrs"'), "not an expectation"),
        (("name: tiny", "name: Tiny Scenario"), "name"),
        (("  - {name: baseline", "  - {nam: baseline"), "load.stages.0"),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_scenario(str(path))
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unknown_names_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"shipped: .*black-friday"):
        load_scenario("no-such-scenario")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(str(_write(tmp_path, "name: [unclosed")))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_scenario(str(_write(tmp_path, "- a list")))


def test_scaling_stretches_time_and_rates_together(tmp_path: Path) -> None:
    scenario, _ = load_scenario(str(_write(tmp_path, MINIMAL)))
    short = scaled(scenario, duration_s=15, peak_rps=50)
    assert short.duration_s == pytest.approx(15)
    assert short.window("email-slow") == pytest.approx((6, 8.5))
    assert [s.rate for s in short.load.stages] == [20, 50]
    assert short.expectations == scenario.expectations
    with pytest.raises(ConfigError):
        scaled(scenario, duration_s=0, peak_rps=None)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "async.ack.p99 < 1s",
            {"lane": "async", "metric": "checkout", "stat": "p99", "op": "<", "value": 1.0},
        ),
        ("sync.checkout.p50 >= 1800ms at baseline", {"value": 1.8, "window": "baseline", "mode": "at"}),
        (
            "sync.error_rate > 20% during email-slow",
            {"metric": "error_rate", "value": 0.2, "window": "email-slow"},
        ),
        ("async.checkout.p99 within 20% of baseline during email-slow", {"kind": "relative", "value": 0.2}),
        (
            "async.checkout.p99 at most 20% above baseline during email-slow",
            {"kind": "relative", "op": "above", "value": 0.2, "window": "email-slow"},
        ),
        ("async backlog drains within 1m after email-slow", {"kind": "drains", "value": 60.0}),
        ("sync does not recover within 60s after trigger", {"kind": "recovers", "negated": True}),
        ("async recovers within 30s after trigger", {"kind": "recovers", "negated": False}),
        ("No  lost orders", {"kind": "no_loss"}),
        ("no duplicate side effects", {"kind": "no_duplicates"}),
    ],
)
def test_expectations_parse(text: str, fields: dict[str, object]) -> None:
    e = parse_expectation(text)
    for key, value in fields.items():
        assert getattr(e, key) == value, key


@pytest.mark.parametrize(
    "text",
    [
        "async.ack.p42 < 1s",
        "async.latency < 1s",
        "sync.error_rate < 1s",
        "sync.checkout < 5%",
        "sync backlog drains within 10s after x",
        "everything is fine",
    ],
)
def test_bad_expectations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_expectation(text)


@pytest.mark.parametrize(
    ("targets", "allow", "ok"),
    [
        ({"sync": "http://127.0.0.1:9000"}, (), True),
        ({"async": "http://127.8.9.10:9000"}, (), True),
        ({"sync": "http://[::1]:9000"}, (), True),
        ({"sync": "http://localhost:9000"}, (), True),
        ({"sync": "http://10.0.0.5:9000"}, (), False),
        ({"sync": "http://shop.example.com"}, (), False),
        ({"sync": "http://shop.example.com"}, ("shop.example.com",), True),
        ({"sync": "http://10.0.0.5:9000"}, ("10.0.0.6",), False),
        ({"blue": "http://127.0.0.1:9000"}, (), False),
        ({"sync": "ftp://127.0.0.1"}, (), False),
    ],
)
def test_load_goes_to_loopback_unless_a_host_is_allowed(
    targets: dict[str, str], allow: tuple[str, ...], ok: bool
) -> None:
    from harness.run.plan import check_targets

    if ok:
        check_targets(targets, allow)
    else:
        with pytest.raises(ConfigError):
            check_targets(targets, allow)
