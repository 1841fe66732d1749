"""The async lane's order store: a run's drain counts only the run's own orders, and a
client's idempotency key is claimed by one attempt."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from targets.idempotency import Claim, ClaimOutcome
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


def _accept_keyed(store: OrderStore, order_id: str, key: str) -> bool:
    return store.accept(
        order_id=order_id, customer_id="c1", body={}, steps=("email",), idempotency_key=key,
        webhook_url=None, correlation_id=order_id, event=("order.confirmed", b"{}", {}),
    )  # fmt: skip


def test_concurrent_claims_of_one_key_have_one_winner_and_one_order_id(tmp_path: Path) -> None:
    """Twenty connections (as twenty processes would hold) claim one key at once: one may call
    payment, the others see its claim and its order id."""
    path = tmp_path / "orders.sqlite3"
    stores = [OrderStore(path) for _ in range(20)]
    start = threading.Barrier(len(stores))

    def claim(i: int) -> Claim:
        start.wait()
        return stores[i].claim("key-1", f"order-{i}", lease_s=60)

    with ThreadPoolExecutor(len(stores)) as pool:
        claims = list(pool.map(claim, range(len(stores))))
    winners = [c for c in claims if c.outcome is ClaimOutcome.WON]
    assert len(winners) == 1, claims
    assert {c.order_id for c in claims} == {winners[0].order_id}
    assert {c.outcome for c in claims if c is not winners[0]} == {ClaimOutcome.RUNNING}
    for store in stores:
        store.close()


def test_a_failed_attempt_can_be_retried_under_its_order_id_and_a_stored_order_settles_the_key(
    tmp_path: Path,
) -> None:
    store = OrderStore(tmp_path / "orders.sqlite3")
    first = store.claim("k", "o1", lease_s=60)
    assert first == Claim(order_id="o1", outcome=ClaimOutcome.WON)
    store.release("k", "o1")  # payment failed
    retry = store.claim("k", "o2", lease_s=60)
    assert retry == Claim(order_id="o1", outcome=ClaimOutcome.WON)  # payment dedupes o1's key
    assert store.claim("k", "o3", lease_s=60) == Claim(order_id="o1", outcome=ClaimOutcome.RUNNING)
    assert _accept_keyed(store, "o1", "k")
    assert store.claim("k", "o4", lease_s=60) == Claim(order_id="o1", outcome=ClaimOutcome.SETTLED)
    assert store.db.execute("SELECT COUNT(*) FROM key_claims").fetchone() == (0,)
    assert store.counts() == {"accepted": 1, "fulfilled": 0, "failed": 0}


def test_a_claim_a_crash_left_running_is_taken_over_after_its_lease(tmp_path: Path) -> None:
    store = OrderStore(tmp_path / "orders.sqlite3")
    assert store.claim("k", "o1", lease_s=60).outcome is ClaimOutcome.WON
    assert store.claim("k", "o2", lease_s=60).outcome is ClaimOutcome.RUNNING
    time.sleep(0.02)
    assert store.claim("k", "o2", lease_s=0.01) == Claim(order_id="o1", outcome=ClaimOutcome.WON)
    # Both attempts ran under o1: the later one to finish stores nothing twice.
    assert _accept_keyed(store, "o1", "k") is True
    assert _accept_keyed(store, "o1", "k") is False
    assert store.backlog() == 1
