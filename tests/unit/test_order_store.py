"""The async lane's order store: a run's drain counts only the run's own orders."""

from __future__ import annotations

import time
from pathlib import Path

from targets.order_store import OrderStore


def _accept(store: OrderStore, order_id: str) -> None:
    store.accept(
        order_id=order_id, customer_id="c1", body={}, steps=("email",), idempotency_key=None,
        webhook_url=None, correlation_id=order_id, event=("order.confirmed", b"{}", {}),
    )  # fmt: skip


def test_an_earlier_runs_lost_order_does_not_leave_a_later_run_undrained(tmp_path: Path) -> None:
    store = OrderStore(tmp_path / "orders.sqlite3")
    _accept(store, "lost-in-run-1")  # never finished: the broker lost its event
    time.sleep(0.01)
    run_2 = time.time()
    _accept(store, "run-2")
    store.apply_step("run-2", "email", "done")
    now = time.time() + 1
    assert store.drain(now)["unfinished"] == 1  # the whole store: run 1's order is still open
    drained = store.drain(now, since=run_2)
    assert drained["unfinished"] == 0 and drained["last_finished_at"] >= run_2
    assert store.counts(since=run_2) == {"accepted": 0, "fulfilled": 1, "failed": 0}
    assert store.counts() == {"accepted": 1, "fulfilled": 1, "failed": 0}
