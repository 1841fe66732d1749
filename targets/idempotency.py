"""A client's ``idempotency_key``, claimed before any side effect is done for it.

Two requests with one key must not both call payment, so the key is claimed first, in one
SQLite transaction: the first request writes the claim and does the work under the claim's
order id; a duplicate sees the claim.  While the claim is ``running`` a duplicate waits for
that attempt's answer (when this process runs it) or is told to retry later (409).  An attempt
that failed leaves its claim ``failed``: the client retries with the same key and the retry
runs under the same order id, so a dependency that did the work the first time (a timeout
after the charge) answers the retry from its own idempotency store instead of charging again.
A claim a crashed process left ``running`` can be taken over once its lease has run out.
Once the order is stored, its key is settled in the caller's own table (the order row, or
the sync lane's confirmed keys) and the claim row is deleted in the same transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

__all__ = ["CLAIMS_SCHEMA", "AttemptInFlight", "Claim", "ClaimOutcome", "KeyClaims", "RunningAttempts"]

CLAIMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS key_claims (
    idempotency_key TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'failed')),
    claimed_at REAL NOT NULL
);
"""

T = TypeVar("T")


class ClaimOutcome(Enum):
    WON = "won"  # this request does the work, under the claim's order id
    RUNNING = "running"  # another attempt holds the key and has not finished
    SETTLED = "settled"  # an earlier attempt stored the order: answer with it


@dataclass(frozen=True, kw_only=True)
class Claim:
    order_id: str
    outcome: ClaimOutcome


class AttemptInFlight(Exception):
    """A duplicate arrived while an attempt this process does not run holds the key."""

    http_status = 409

    def __init__(self, order_id: str) -> None:
        super().__init__(f"an earlier request with this idempotency_key (order {order_id}) is still running")
        self.order_id = order_id

    def as_json(self) -> dict[str, object]:
        return {"error": "attempt_in_flight", "order_id": self.order_id, "detail": str(self)}


class KeyClaims:
    """The claims table in a store's own SQLite connection.

    ``settled_query`` selects the order id a key already made (one ``?`` for the key), from
    the table that records it for good.  The caller serialises calls on ``db`` if it shares
    the connection between threads.
    """

    def __init__(self, db: sqlite3.Connection, *, settled_query: str) -> None:
        self.db = db
        self.settled_query = settled_query
        db.executescript(CLAIMS_SCHEMA)

    def claim(self, idempotency_key: str, order_id: str, *, lease_s: float) -> Claim:
        """Claim ``idempotency_key`` for a new attempt that would use ``order_id``.

        >>> claims = KeyClaims(sqlite3.connect(":memory:", isolation_level=None),
        ...                    settled_query="SELECT NULL WHERE 0 AND ?")
        >>> claims.claim("k", "o1", lease_s=60).outcome, claims.claim("k", "o2", lease_s=60)
        (<ClaimOutcome.WON: 'won'>, Claim(order_id='o1', outcome=<ClaimOutcome.RUNNING: 'running'>))
        """
        now = time.time()
        with self.db:
            # IMMEDIATE takes the write lock at once: two processes can not both read "free".
            self.db.execute("BEGIN IMMEDIATE")
            settled = self.db.execute(self.settled_query, (idempotency_key,)).fetchone()
            if settled is not None:
                return Claim(order_id=str(settled[0]), outcome=ClaimOutcome.SETTLED)
            try:
                self.db.execute(
                    "INSERT INTO key_claims VALUES (?, ?, 'running', ?)", (idempotency_key, order_id, now)
                )
                return Claim(order_id=order_id, outcome=ClaimOutcome.WON)
            except sqlite3.IntegrityError:
                pass  # claimed before: by a running attempt, a failed one, or a crashed one
            holder, state, claimed_at = self.db.execute(
                "SELECT order_id, state, claimed_at FROM key_claims WHERE idempotency_key = ?",
                (idempotency_key,),
            ).fetchone()
            if state == "running" and claimed_at > now - lease_s:
                return Claim(order_id=str(holder), outcome=ClaimOutcome.RUNNING)
            self.db.execute(
                "UPDATE key_claims SET state = 'running', claimed_at = ? WHERE idempotency_key = ?",
                (now, idempotency_key),
            )
            return Claim(order_id=str(holder), outcome=ClaimOutcome.WON)

    def release(self, idempotency_key: str, order_id: str) -> None:
        """The attempt failed: a retry with the same key may run (under the same order id)."""
        self.db.execute(
            "UPDATE key_claims SET state = 'failed' WHERE idempotency_key = ? AND order_id = ?",
            (idempotency_key, order_id),
        )

    def settle(self, idempotency_key: str) -> None:
        """Forget the claim; call inside the transaction that records the key for good."""
        self.db.execute("DELETE FROM key_claims WHERE idempotency_key = ?", (idempotency_key,))


class RunningAttempts(Generic[T]):
    """The attempts this process runs, by idempotency key, so that a duplicate arriving
    meanwhile waits for that attempt's answer instead of starting one of its own.  Each
    attempt runs as its own task: a caller that goes away does not cut it short, so its
    claim is always settled or released."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    def run(self, idempotency_key: str, attempt: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        task = asyncio.ensure_future(attempt)
        self._running[idempotency_key] = task

        def done(finished: asyncio.Task[T]) -> None:
            if self._running.get(idempotency_key) is finished:
                del self._running[idempotency_key]
            if not finished.cancelled():
                finished.exception()  # whoever awaited it saw it; no "never retrieved" log

        task.add_done_callback(done)
        return asyncio.shield(task)

    def get(self, idempotency_key: str) -> asyncio.Future[T] | None:
        task = self._running.get(idempotency_key)
        return asyncio.shield(task) if task is not None else None

    async def cancel(self) -> None:
        """Cut every attempt short (at shutdown, before their store closes): each releases its claim."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._running)
