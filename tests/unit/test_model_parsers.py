"""The model's one parser of each: a fault from JSON (FaultSpec.from_json), lanes, durations.
Each refusal is a ConfigError naming the field, so the CLI, the live view and the Chaos
Toolkit extension all say the same thing about the same mistake."""

from __future__ import annotations

import math
from typing import Any

import pytest

from model.errors import ConfigError
from model.faults import FaultSpec
from model.json_values import number_value, object_of, refuse_unknown, text_value
from model.lanes import parse_lane, parse_lane_list, parse_lanes
from model.scenario import parse_duration

LATENCY = {"dependency": "payment", "type": "latency", "attributes": {"latency": 1000}}


def _with(**changes: Any) -> dict[str, Any]:
    return {**LATENCY, **changes}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "latency"}, "dependency: required"),
        (_with(dependency=7), "dependency: expected a dependency's name"),
        (_with(dependency=""), "dependency: expected a dependency's name"),
        ({"dependency": "payment"}, "type: required"),
        (_with(type=["latency"]), "type: expected a fault type"),
        (_with(lane="left"), "lane: expected sync, async or both, got 'left'"),
        (_with(lane=["sync"]), "lane: expected sync, async or both"),
        (_with(lanes="fast"), "lane: expected one of sync, async, got 'fast'"),
        (_with(lanes=[]), "lanes: expected both, sync, async or a list of lanes"),
        (_with(lanes=["sync", "both"]), "lane: expected one of sync, async, got 'both'"),
        (_with(lane="sync", lanes="sync"), "lane, lanes: give one of them"),
        (_with(attributes=[1000]), "attributes: expected an object"),
        (_with(attributes={"latency": "1000"}), "attributes.latency: expected a number, got '1000'"),
        (_with(attributes={"latency": True}), "attributes.latency: expected a number, got True"),
        (_with(attributes={"latency": math.inf}), "attributes.latency: expected a finite number, got inf"),
        (_with(toxicity="all"), "toxicity: expected a number, got 'all'"),
        (_with(toxicity=math.nan), "toxicity: expected a finite number, got nan"),
        (_with(stream=1), "stream: expected upstream or downstream, got 1"),
        (_with(name=""), "name: expected a toxic name, got ''"),
        (_with(colour="red"), "unknown field(s) colour; expected attributes, dependency, lane, lanes"),
        ([LATENCY], "expected a JSON object"),
    ],
)  # fmt: skip
def test_a_bad_fault_names_its_field(data: Any, field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        FaultSpec.from_json(data)
    assert str(refused.value).startswith(field), str(refused.value)


def test_a_fault_from_json_takes_lane_or_lanes_alike() -> None:
    both = FaultSpec.from_json(LATENCY)
    assert both == FaultSpec(dependency="payment", type="latency", attributes={"latency": 1000})
    assert both.lanes == ("sync", "async") and both.toxicity == 1.0 and both.stream == "downstream"
    for spelling in ({"lane": "async"}, {"lanes": "async"}, {"lanes": ["async", "async"]}):
        assert FaultSpec.from_json(_with(**spelling)).lanes == ("async",), spelling
    assert FaultSpec.from_json(_with(lane="both")) == FaultSpec.from_json(_with(lanes="both")) == both
    # null is absent: the defaults
    nulls = FaultSpec.from_json(_with(attributes=None, toxicity=None, stream=None, name=None))
    assert nulls == FaultSpec(dependency="payment", type="latency")


def test_a_fault_survives_json_both_ways() -> None:
    spec = FaultSpec(
        dependency="email", type="http_error", lanes=("async",), attributes={"rate": 0.5, "status": 503},
        toxicity=0.25, stream="upstream", name="flaky",
    )  # fmt: skip
    assert FaultSpec.from_json(spec.as_json()) == spec
    assert spec.fault_name == "http_error"
    assert FaultSpec(dependency="email", type="latency").fault_name == "doorbuster_latency_downstream"


@pytest.mark.parametrize(
    ("text", "lanes"), [("both", ("sync", "async")), ("sync", ("sync",)), ("async", ("async",))]
)
def test_lanes(text: str, lanes: tuple[str, ...]) -> None:
    assert parse_lanes(text) == lanes == parse_lane_list(text)


@pytest.mark.parametrize("value", ["fast", "", "Sync", None, 1, ["sync"]])
def test_bad_lanes_name_the_option(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^--lane: expected sync, async or both, got "):
        parse_lanes(value, field="--lane")


def test_one_lane_and_a_list_of_lanes() -> None:
    assert parse_lane("async") == "async"
    with pytest.raises(ConfigError, match=r"^lane: expected one of sync, async, got 'both'"):
        parse_lane("both")
    assert parse_lane_list(["async", "sync", "async"]) == ("async", "sync")
    bad_values: tuple[Any, ...] = ([], {}, 3)
    for bad in bad_values:
        with pytest.raises(ConfigError, match=r"^lanes: expected both, sync, async or a list of lanes"):
            parse_lane_list(bad)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90s", 90.0), ("2m", 120.0), ("500ms", 0.5), ("1.5", 1.5), ("1h", 3600.0), (30, 30.0), (0.25, 0.25)],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "duration 'soon': expected a duration like 30s, 2m or 500ms"),
        ("0s", "duration '0s' must be positive"),
        (0, "duration 0 must be positive"),
        (math.nan, "duration nan must be positive"),
        ("-1s", "duration '-1s': expected a duration like"),
        (-1, "duration -1: a duration can not be negative"),
        (True, "duration True: expected a duration"),
        (None, "duration None: expected a duration"),
    ],
)
def test_bad_durations_say_what_was_given(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_duration(value)
    assert str(refused.value).startswith(message), str(refused.value)


def test_a_duration_may_be_bounded() -> None:
    assert parse_duration("10m", most_s=600) == 600.0
    with pytest.raises(ConfigError, match=r"^duration '2h' must be at most 600s"):
        parse_duration("2h", most_s=600)


def test_json_values() -> None:
    data = {"name": "x", "empty": "", "count": 3}
    assert object_of(data) is data
    assert text_value(data, "name", expected="a name", required=True) == "x"
    assert text_value(data, "missing", expected="a name", required=False) is None
    with pytest.raises(ConfigError, match=r"^empty: expected a name, got ''"):
        text_value(data, "empty", expected="a name", required=False)
    assert number_value("count", 3) == 3
    refuse_unknown(data, {"name", "empty", "count"})
    with pytest.raises(ConfigError, match=r"^unknown field\(s\) count, empty; expected name"):
        refuse_unknown(data, {"name"})
