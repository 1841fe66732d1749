"""The SQLite file each target process keeps what it must remember in.

A service that keeps every order it has seen in a dict grows for as long as it runs (the
soak in ``bench/soak.py`` found exactly that), so the order services, the workers and the
downstream services keep their records on disk, in their stack's data directory, and hold
in memory only what is in flight.  One opener, so every store gets the same settings: WAL
(readers don't wait for the writer), ``synchronous=NORMAL`` (a commit survives a crash of the
process, which is what the fault tests do to it), and a small page cache, so memory stays flat
while the file grows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["connect", "select_in"]

CACHE_KIB = 1024


def connect(path: Path | str, *, schema: str, threads: bool = False) -> sqlite3.Connection:
    """Open (or create) ``path`` in autocommit mode and make sure ``schema`` exists.

    ``threads``: the connection is used from more than one thread, each call under the
    caller's own lock.  ``":memory:"`` gives a private store, for tests.
    """
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=not threads)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    db.executescript(schema)
    return db


def select_in(db: sqlite3.Connection, query: str, keys: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``query`` for ``keys``, where ``{keys}`` in the query stands for the list of
    placeholders (``... WHERE order_id IN ({keys})``); asked 500 at a time, well inside
    SQLite's limit on parameters."""
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        yield from db.execute(query.format(keys=",".join("?" * len(chunk))), chunk)
