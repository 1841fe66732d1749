"""OpenAPI descriptions of the target services, served at ``GET /openapi.json``.

They describe what a client may send; the test suite fuzzes every service with schemathesis
from these documents and requires that nothing a client can send gets a 500.
"""

from __future__ import annotations

from typing import Any

from model.headers import DEADLINE_HEADER
from model.target_config import MAX_SEED, TARGET_SEED_PATH

__all__ = ["downstream_spec", "order_spec"]

_TEXT = {"type": "string", "minLength": 1, "maxLength": 128}
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error"],
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(*codes: int, ok: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        body = ok if code < 300 and ok is not None else _ERROR if code >= 400 else {"type": "object"}
        out[str(code)] = {"description": str(code), **_json(body)}
    return out


# The caller's remaining time: the sync lane reads it under its ``deadline`` retry policy, a
# downstream always.
_DEADLINE = {
    "name": DEADLINE_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 0, "maximum": 86_400_000},
}
_PLAIN = {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}
_SEED = {
    "type": "object",
    "properties": {"seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED}},
    "required": ["seed"],
    "additionalProperties": False,
}
_COMMON: dict[str, Any] = {
    "/health": {"get": {"operationId": "health", "responses": _responses(200)}},
    "/metrics": {"get": {"operationId": "metrics", "responses": {"200": _PLAIN}}},
    # The seed the process's random draws (retry jitter, service times) come from; a run sets its own.
    TARGET_SEED_PATH: {
        "get": {"operationId": "getSeed", "responses": _responses(200)},
        "put": {
            "operationId": "setSeed",
            "requestBody": {"required": True, **_json(_SEED)},
            "responses": _responses(200, 400, 413, 422),
        },
    },
}
_IDS = {
    "type": "object",
    "properties": {
        "order_ids": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 200}
    },
    "required": ["order_ids"],
    "additionalProperties": False,
}


def order_spec(lane: str) -> dict[str, Any]:
    order = {
        "type": "object",
        "properties": {
            "customer_id": _TEXT,
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "properties": {"sku": _TEXT, "qty": {"type": "integer", "minimum": 1, "maximum": 10000}},
                    "required": ["sku", "qty"],
                    "additionalProperties": False,
                },
            },
            "idempotency_key": _TEXT,
            "webhook_url": {"type": "string", "format": "uri", "maxLength": 128},
        },
        "required": ["customer_id", "items"],
        "additionalProperties": False,
    }
    accepted = 200 if lane == "sync" else 202
    paths: dict[str, Any] = {
        "/orders": {
            "post": {
                "operationId": "placeOrder",
                **({"parameters": [_DEADLINE]} if lane == "sync" else {}),
                "requestBody": {"required": True, **_json(order)},
                # 409: an attempt with the same idempotency_key is still running
                "responses": _responses(accepted, 400, 409, 413, 422, 502, 503, 504, ok={"type": "object"}),
            }
        },
        "/orders/{order_id}": {
            "get": {
                "operationId": "getOrder",
                "parameters": [{"name": "order_id", "in": "path", "required": True, "schema": _TEXT}],
                "responses": _responses(200, 404, ok={"type": "object"}),
            }
        },
        **_COMMON,
    }
    if lane == "async":
        paths["/ledger"] = {
            "get": {
                "operationId": "ledger",
                "parameters": [
                    {"name": name, "in": "query", "required": False, "schema": {"type": "number"}}
                    for name in ("since", "before")
                ],
                "responses": _responses(200, 400),
            }
        }
        paths["/ledger/check"] = {
            "post": {
                "operationId": "checkOrders",
                "requestBody": {"required": True, **_json(_IDS)},
                "responses": _responses(200, 400, 413, 422),
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"doorbuster {lane} order service", "version": "1"},
        "paths": paths,
    }


def downstream_spec(dependency: str) -> dict[str, Any]:
    work = {
        "type": "object",
        "properties": {
            "order_id": _TEXT,
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 256},
        },
        "required": ["order_id"],
    }
    faults = {
        "type": "object",
        "properties": {
            "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "error_status": {"type": "integer", "minimum": 400, "maximum": 599},
            "extra_latency_ms": {"type": "number", "minimum": 0, "maximum": 100},
            "extra_jitter_ms": {"type": "number", "minimum": 0, "maximum": 100},
            "delay_rate": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "additionalProperties": False,
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"doorbuster {dependency} service", "version": "1"},
        "paths": {
            "/work": {
                "post": {
                    "operationId": "work",
                    "parameters": [_DEADLINE],
                    "requestBody": {"required": True, **_json(work)},
                    # 504: the caller's deadline passed; 4xx-5xx beyond those only when a
                    # fault injected them on purpose
                    "responses": _responses(200, 400, 413, 422, 503, 504, ok={"type": "object"}),
                }
            },
            "/admin/faults": {
                "get": {"operationId": "getFaults", "responses": _responses(200)},
                "put": {
                    "operationId": "setFaults",
                    "requestBody": {"required": True, **_json(faults)},
                    "responses": _responses(200, 400, 422),
                },
                "delete": {"operationId": "clearFaults", "responses": _responses(200)},
            },
            "/ledger": {"get": {"operationId": "ledger", "responses": _responses(200)}},
            "/ledger/check": {
                "post": {
                    "operationId": "checkOrders",
                    "requestBody": {"required": True, **_json(_IDS)},
                    "responses": _responses(200, 400, 413, 422),
                }
            },
            **_COMMON,
        },
    }
