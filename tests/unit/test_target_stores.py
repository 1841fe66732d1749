"""The SQLite records the downstream and sync order services keep instead of growing dicts."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from prometheus_client import CollectorRegistry

from model.settings import DependencySettings
from targets.downstream import DownstreamService, SideEffectLedger
from targets.metrics import DownstreamServerMetrics
from targets.sync_lane import SyncOrders


def test_the_side_effect_ledger_counts_and_outlives_its_process(tmp_path: Path) -> None:
    ledger = SideEffectLedger(tmp_path / "d.sqlite3")
    assert [ledger.apply("a"), ledger.apply("b"), ledger.apply("a")] == [1, 1, 2]
    ledger.remember("a:email", {"order_id": "a", "applied": 1})
    ledger.remember("a:email", {"order_id": "a", "applied": 2})  # the first answer stays
    ledger.close()
    again = SideEffectLedger(tmp_path / "d.sqlite3")
    assert again.totals() == (2, 3, 1)
    assert again.applied_many(["a", "b", "zz"]) == {"a": 2, "b": 1, "zz": 0}
    many = again.applied_many([f"x{i}" for i in range(1200)] + ["b"])  # asked in chunks
    assert len(many) == 1201 and sum(many.values()) == 1 and many["b"] == 1
    assert again.result("a:email") == {"order_id": "a", "applied": 1}
    assert again.result("b:email") is None
    assert SideEffectLedger().totals() == (0, 0, 0)


async def test_a_finished_idempotent_request_is_answered_from_the_ledger_not_memory() -> None:
    service = DownstreamService(
        lane="async", dependency="email", settings=DependencySettings(latency_ms=20, spread=0),
        time_scale=1.0, metrics=DownstreamServerMetrics(CollectorRegistry()), rng=random.Random(1),
    )  # fmt: skip
    first, second = await asyncio.gather(service.handle("o", "o:email"), service.handle("o", "o:email"))
    assert first == (200, {"order_id": "o", "dependency": "email", "applied": 1})
    assert second == (200, {**first[1], "replayed": True})  # waited for the running one
    assert service._running == {}  # nothing kept in memory once the work is done
    assert await service.handle("o", "o:email") == second
    assert service.ledger.applied("o") == 1
    assert (await service.handle("o", None))[1]["applied"] == 2  # no key: the work again


def test_sync_orders_keep_records_and_confirmed_keys(tmp_path: Path) -> None:
    orders = SyncOrders(tmp_path / "s.sqlite3")
    orders.put({"order_id": "1", "status": "failed"}, None)
    orders.put({"order_id": "2", "status": "confirmed"}, "k")
    orders.close()
    orders.put({"order_id": "3", "status": "confirmed"}, "late")  # after shutdown: dropped
    again = SyncOrders(tmp_path / "s.sqlite3")
    assert again.get("1") == {"order_id": "1", "status": "failed"}
    assert again.get("3") is None
    assert again.confirmed("k") == {"order_id": "2", "status": "confirmed"}
    assert again.confirmed("late") is None
