"""The async lane's SQLite store: orders, their steps, and the transactional outbox.

An accepted order, its pending steps and its ``order.confirmed`` outbox row are written in
one transaction, so an order is never accepted without the event that will fulfil it, and
never announced without being stored.  The relay marks a row sent only after the broker
confirmed it; a crash between the two sends it again, which the idempotent workers absorb.
A client's idempotency key is claimed here before payment is called
(``targets.idempotency``), and settled by the transaction that stores its order.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets.db import connect, select_in
from targets.idempotency import Claim, KeyClaims

__all__ = ["OrderStore", "OutboxRow", "StepUpdate"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    webhook_url TEXT,
    correlation_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS steps (
    order_id TEXT NOT NULL,
    dependency TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (order_id, dependency)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);
"""


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    seq: int
    message_id: str
    routing_key: str
    payload: bytes
    headers: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class StepUpdate:
    """What applying a step event did to its order."""

    order_id: str
    status: str  # the order's status after the update
    finished_now: bool  # this update moved the order to fulfilled or failed
    created_at: float
    webhook_url: str | None


class OrderStore:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, schema=_SCHEMA, threads=True)
        self.claims = KeyClaims(
            self.db, settled_query="SELECT order_id FROM orders WHERE idempotency_key = ?"
        )

    def close(self) -> None:
        self.db.close()

    def claim(self, idempotency_key: str, order_id: str, *, lease_s: float) -> Claim:
        """Claim a client's key before payment is called (see ``KeyClaims.claim``)."""
        return self.claims.claim(idempotency_key, order_id, lease_s=lease_s)

    def release(self, idempotency_key: str, order_id: str) -> None:
        """Payment failed: a retry with the key runs again, under the same order id."""
        self.claims.release(idempotency_key, order_id)

    def accept(
        self,
        *,
        order_id: str,
        customer_id: str,
        body: dict[str, Any],
        steps: tuple[str, ...],
        idempotency_key: str | None,
        webhook_url: str | None,
        correlation_id: str,
        event: tuple[str, bytes, dict[str, str]],
    ) -> bool:
        """Store the order, its pending steps and its outbox event in one transaction, and
        settle its idempotency key; False (and nothing written) if the order is stored already
        (two attempts under one order id: the second took over a claim whose lease ran out)."""
        now = time.time()
        routing_key, payload, headers = event
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone():
                return False
            self.db.execute(
                "INSERT INTO orders VALUES (?, ?, ?, 'accepted', ?, ?, ?, ?, NULL)",
                (
                    order_id,
                    customer_id,
                    json.dumps(body),
                    idempotency_key,
                    webhook_url,
                    correlation_id,
                    now,
                ),
            )
            self.db.executemany(
                "INSERT INTO steps VALUES (?, ?, 'pending', ?)",
                [(order_id, dep, now) for dep in steps],
            )
            self.db.execute(
                "INSERT INTO outbox (message_id, routing_key, payload, headers, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (order_id, routing_key, payload.decode(), json.dumps(headers), now),
            )
            if idempotency_key is not None:
                self.claims.settle(idempotency_key)
        return True

    def unsent(self, limit: int) -> list[OutboxRow]:
        rows = self.db.execute(
            "SELECT seq, message_id, routing_key, payload, headers FROM outbox"
            " WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OutboxRow(
                seq=r[0],
                message_id=r[1],
                routing_key=r[2],
                payload=r[3].encode(),
                headers=json.loads(r[4]),
            )
            for r in rows
        ]

    def mark_sent(self, seq: int) -> None:
        self.db.execute("UPDATE outbox SET sent_at = ? WHERE seq = ?", (time.time(), seq))

    def backlog(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        return int(row[0])

    def apply_step(self, order_id: str, dependency: str, state: str) -> StepUpdate | None:
        """Record a step's result; idempotent, so a duplicate event changes nothing."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            order = self.db.execute(
                "SELECT status, created_at, webhook_url FROM orders WHERE order_id = ?",
                (order_id,),
            ).fetchone()
            if order is None:
                return None
            status, created_at, webhook_url = order
            self.db.execute(
                "UPDATE steps SET state = ?, updated_at = ?"
                " WHERE order_id = ? AND dependency = ? AND state = 'pending'",
                (state, now, order_id, dependency),
            )
            if status != "accepted":
                return StepUpdate(
                    order_id=order_id,
                    status=status,
                    finished_now=False,
                    created_at=created_at,
                    webhook_url=webhook_url,
                )
            states = [
                r[0] for r in self.db.execute("SELECT state FROM steps WHERE order_id = ?", (order_id,))
            ]
            new_status = status
            if "pending" not in states:
                new_status = "failed" if "failed" in states else "fulfilled"
                self.db.execute(
                    "UPDATE orders SET status = ?, finished_at = ? WHERE order_id = ?",
                    (new_status, now, order_id),
                )
            return StepUpdate(
                order_id=order_id,
                status=new_status,
                finished_now=new_status != status,
                created_at=created_at,
                webhook_url=webhook_url,
            )

    def get(self, order_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT order_id, status, body, correlation_id, created_at, finished_at"
            " FROM orders WHERE order_id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            return None
        steps = {
            dep: state
            for dep, state in self.db.execute(
                "SELECT dependency, state FROM steps WHERE order_id = ?", (order_id,)
            )
        }
        return {
            "order_id": row[0],
            "status": row[1],
            **json.loads(row[2]),
            "correlation_id": row[3],
            "created_at": row[4],
            "finished_at": row[5],
            "steps": steps,
        }

    def statuses(self, order_ids: list[str]) -> dict[str, str]:
        """The status of each known order id (unknown ids are left out)."""
        query = "SELECT order_id, status FROM orders WHERE order_id IN ({keys})"
        return dict(select_in(self.db, query, order_ids))

    def drain(self, before: float, since: float = 0.0) -> dict[str, Any]:
        """For orders accepted from ``since`` until ``before``: how many are unfinished, when the
        last finished.  ``since`` keeps a run to its own orders: an order an earlier run lost
        stays unfinished for ever, and must not make every later backlog look undrained."""
        unfinished, last = self.db.execute(
            "SELECT SUM(status = 'accepted'), MAX(finished_at) FROM orders"
            " WHERE created_at >= ? AND created_at < ?",
            (since, before),
        ).fetchone()
        return {"before": before, "unfinished": int(unfinished or 0), "last_finished_at": last}

    def counts(self, since: float = 0.0) -> dict[str, int]:
        """Orders by status, of those accepted from ``since`` on."""
        counts = dict.fromkeys(("accepted", "fulfilled", "failed"), 0)
        for status, n in self.db.execute(
            "SELECT status, COUNT(*) FROM orders WHERE created_at >= ? GROUP BY status", (since,)
        ):
            counts[status] = n
        return counts
