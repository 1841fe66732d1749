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


def test_a_runs_counts_read_its_own_orders_not_the_whole_store(tmp_path: Path) -> None:
    """The run polls these every second while it waits for the drain, on the service's event
    loop; a store that has kept every order of a long soak must not be read whole."""
    store = OrderStore(tmp_path / "orders.sqlite3")
    for i in range(2000):
        _accept(store, f"earlier-{i}")
    time.sleep(0.01)
    since = time.time()
    for i in range(5):
        _accept(store, f"this-run-{i}")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.db.set_progress_handler(count, 1)  # one call per SQLite VM instruction
    assert store.counts(since)["accepted"] == 5
    assert store.drain(time.time() + 1, since)["unfinished"] == 5
    assert steps < 1000, steps  # reading 2005 rows takes over ten times that
