"""The orders API's request body, validated the same way on both lanes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from model.topology import is_loopback

__all__ = ["InvalidOrder", "OrderRequest", "parse_order"]

MAX_ITEMS = 100
MAX_QTY = 10_000
MAX_TEXT = 128


class InvalidOrder(ValueError):
    """The body is not an order; the message says which field and why."""


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    customer_id: str
    items: tuple[tuple[str, int], ...]
    idempotency_key: str | None
    webhook_url: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "items": [{"sku": sku, "qty": qty} for sku, qty in self.items],
        }


def _text(body: dict[str, Any], field: str, *, required: bool) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise InvalidOrder(f"{field}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(f"{field}: expected a non-empty string")
    if len(value) > MAX_TEXT:
        raise InvalidOrder(f"{field}: at most {MAX_TEXT} characters")
    return value


def _loopback_url(url: str) -> str:
    # The order service calls this URL itself, so it may only point at this machine:
    # a webhook is not a way to send traffic anywhere else.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidOrder("webhook_url: expected an http(s) URL")
    if not is_loopback(parts.hostname):
        raise InvalidOrder("webhook_url: only loopback hosts (127.0.0.0/8, ::1, localhost)")
    return url


def parse_order(body: dict[str, Any]) -> OrderRequest:
    """Validate an order body; raises :class:`InvalidOrder` naming the first bad field."""
    unknown = sorted(set(body) - {"customer_id", "items", "idempotency_key", "webhook_url"})
    if unknown:
        raise InvalidOrder(f"unknown fields: {', '.join(unknown)}")
    customer_id = _text(body, "customer_id", required=True)
    assert customer_id is not None
    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidOrder("items: expected a non-empty list")
    if len(raw_items) > MAX_ITEMS:
        raise InvalidOrder(f"items: at most {MAX_ITEMS}")
    items: list[tuple[str, int]] = []
    for i, item in enumerate(raw_items):
        if not isinstance(item, dict) or set(item) != {"sku", "qty"}:
            raise InvalidOrder(f"items[{i}]: expected {{'sku': str, 'qty': int}}")
        sku, qty = item["sku"], item["qty"]
        if not isinstance(sku, str) or not sku or len(sku) > MAX_TEXT:
            raise InvalidOrder(f"items[{i}].sku: expected a non-empty string")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
            raise InvalidOrder(f"items[{i}].qty: expected an integer from 1 to {MAX_QTY}")
        items.append((sku, qty))
    webhook = _text(body, "webhook_url", required=False)
    return OrderRequest(
        customer_id=customer_id,
        items=tuple(items),
        idempotency_key=_text(body, "idempotency_key", required=False),
        webhook_url=_loopback_url(webhook) if webhook else None,
    )
