"""Nothing a client can send gets a 500: every service fuzzed from its own OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from targets.openapi import downstream_spec, order_spec
from tests.integration.conftest import RunningStack

_FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _schema(spec: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(spec)
    # Valid and invalid inputs alike: a client can send either.
    schema.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    )
    return schema


SYNC = _schema(order_spec("sync"))
ASYNC = _schema(order_spec("async"))
DOWNSTREAM = _schema(downstream_spec("analytics"))


def _call(case: Any, base_url: str, spec: dict[str, Any]) -> None:
    response = case.call(base_url=base_url, timeout=60)
    operation = spec["paths"].get(case.operation.path, {}).get(case.method.lower())
    # Negative cases include methods the service does not have: those must be refused too.
    documented = {int(code) for code in operation["responses"]} if operation else {404, 405}
    assert response.status_code != 500, f"{case.method} {case.formatted_path} -> 500: {response.text[:300]}"
    assert response.status_code in documented, (
        f"{case.method} {case.formatted_path} -> undocumented {response.status_code}: {response.text[:300]}"
    )


@SYNC.parametrize()
@_FUZZ
def test_the_sync_order_service(case: Any, stack: RunningStack) -> None:
    _call(case, stack.url("sync"), order_spec("sync"))


@ASYNC.parametrize()
@_FUZZ
def test_the_async_order_service(case: Any, stack: RunningStack) -> None:
    _call(case, stack.url("async"), order_spec("async"))


@DOWNSTREAM.parametrize()
@_FUZZ
def test_a_downstream_service(case: Any, stack: RunningStack) -> None:
    _call(case, stack.topology.endpoint("downstream-sync-analytics").url, downstream_spec("analytics"))


@pytest.mark.parametrize(
    ("process", "spec"),
    [("order-sync", order_spec("sync")), ("order-async", order_spec("async")),
     ("downstream-async-email", downstream_spec("email"))],
)  # fmt: skip
def test_services_publish_their_openapi_document(
    stack: RunningStack, process: str, spec: dict[str, Any]
) -> None:
    published = requests.get(f"{stack.topology.endpoint(process).url}/openapi.json", timeout=5).json()
    assert published == spec
