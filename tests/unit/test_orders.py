from __future__ import annotations

from typing import Any

import pytest

from targets.orders import InvalidOrder, parse_order

GOOD: dict[str, Any] = {"customer_id": "c1", "items": [{"sku": "tv", "qty": 2}]}


def test_a_good_order() -> None:
    order = parse_order({**GOOD, "idempotency_key": "k", "webhook_url": "http://127.0.0.1:9/hook"})
    assert order.items == (("tv", 2),)
    assert order.idempotency_key == "k"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": GOOD["items"]}, "customer_id"),
        ({**GOOD, "customer_id": ""}, "customer_id"),
        ({**GOOD, "items": []}, "items"),
        ({**GOOD, "items": [{"sku": "tv", "qty": 0}]}, r"items\[0\].qty"),
        ({**GOOD, "items": [{"sku": "tv", "qty": True}]}, r"items\[0\].qty"),
        ({**GOOD, "items": [{"sku": "tv"}]}, r"items\[0\]"),
        ({**GOOD, "extra": 1}, "unknown fields: extra"),
        ({**GOOD, "webhook_url": "http://example.com/hook"}, "loopback"),
        ({**GOOD, "webhook_url": "ftp://127.0.0.1/x"}, "webhook_url"),
    ],
)
def test_bad_orders_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidOrder, match=field):
        parse_order(body)
