"""HTTP faults are checked when made: every bad attribute is refused with a ConfigError that
names it, before anything is sent to a stage; a good one goes to the stage's JSON and back."""

from __future__ import annotations

from typing import Any

import pytest

from model.errors import ConfigError
from model.http_faults import (
    HTTP_FAULT_KINDS,
    HttpAbort,
    HttpDelay,
    HttpError,
    HttpFailFirst,
    HttpMatch,
    http_fault_from_json,
)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"type": "http_error", "attributes": {"status": 200}}, "status"),
        ({"type": "http_error", "attributes": {"status": 503.5}}, "status"),
        ({"type": "http_error", "attributes": {"rate": 0.3}}, "status"),
        ({"type": "http_error", "attributes": {"status": 503, "rate": 1.5}}, "rate"),
        ({"type": "http_error", "attributes": {"status": 503, "rate": -0.1}}, "rate"),
        ({"type": "http_error", "attributes": {"status": 503, "rate": True}}, "rate"),
        ({"type": "http_error", "attributes": {"status": 503, "body": 3}}, "body"),
        ({"type": "http_delay", "attributes": {}}, "latency_ms"),
        ({"type": "http_delay", "attributes": {"latency_ms": -1}}, "latency_ms"),
        ({"type": "http_delay", "attributes": {"latency_ms": "1s"}}, "latency_ms"),
        ({"type": "http_delay", "attributes": {"latency_ms": 1, "jitter_ms": float("nan")}}, "jitter_ms"),
        ({"type": "http_delay", "attributes": {"latency_ms": 1, "where": "sideways"}}, "where"),
        ({"type": "http_fail_first", "attributes": {"count": 0}}, "count"),
        ({"type": "http_fail_first", "attributes": {"count": 2.5}}, "count"),
        ({"type": "http_fail_first", "attributes": {"count": 2, "status": 302}}, "status"),
        ({"type": "http_abort", "attributes": {"after_bytes": -5}}, "after_bytes"),
        ({"type": "http_abort", "attributes": {"after": 5}}, "after"),
        ({"type": "http_teapot", "attributes": {}}, "type"),
        ({"type": "http_abort", "attributes": [1]}, "attributes"),
        ({"type": "http_abort", "name": ""}, "name"),
        ({"type": "http_abort", "colour": "red"}, "colour"),
        ({"type": "http_abort", "match": {"path_prefix": "pay"}}, "match.path_prefix"),
        ({"type": "http_abort", "match": {"method": "GET /"}}, "match.method"),
        ({"type": "http_abort", "match": {"header": {"X-Tenant": 3}}}, "match.header"),
        ({"type": "http_abort", "match": {"paths": "/pay"}}, "paths"),
    ],
)
def test_a_bad_fault_is_refused_naming_what_is_wrong(data: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        http_fault_from_json(data)


def test_each_kind_is_refused_when_made_in_code_too() -> None:
    with pytest.raises(ConfigError, match="http_error: status"):
        HttpError(status=600)
    with pytest.raises(ConfigError, match="http_delay: rate"):
        HttpDelay(latency_ms=10, rate=2)
    with pytest.raises(ConfigError, match="http_fail_first: count"):
        HttpFailFirst(count=-1)
    with pytest.raises(ConfigError, match="http_abort: rate"):
        HttpAbort(rate=1.01)


@pytest.mark.parametrize(
    "fault",
    [
        HttpError(status=503, rate=0.3, body="down"),
        HttpDelay(name="slow-pay", latency_ms=200, jitter_ms=20, rate=0.5, where="response",
                  match=HttpMatch(path_prefix="/pay", method="POST", header={"X-Tenant": "a"})),
        HttpFailFirst(count=2, status=502),
        HttpAbort(rate=0.1, after_bytes=1000),
        HttpAbort(),
    ],
)  # fmt: skip
def test_a_fault_goes_to_json_and_back_as_itself(fault: Any) -> None:
    assert http_fault_from_json(fault.as_json()) == fault


def test_the_name_defaults_to_the_kind_and_an_empty_match_is_not_sent() -> None:
    fault = HttpFailFirst(count=1)
    assert fault.fault_name == "http_fail_first"
    assert fault.as_json() == {"type": "http_fail_first", "attributes": {"count": 1, "status": 503}}


def test_every_kind_lists_its_attributes() -> None:
    assert HTTP_FAULT_KINDS == {
        "http_error": ("status", "rate", "body"),
        "http_delay": ("latency_ms", "jitter_ms", "rate", "where"),
        "http_fail_first": ("count", "status"),
        "http_abort": ("rate", "after_bytes"),
    }
