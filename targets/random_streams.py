"""A target process's random draws, each from its own stream derived from the run's seed.

A process keeps its generators here by purpose (``retry/payment``, ``work``).  Each is seeded
from (seed, process name, purpose), so no two processes, and no two purposes in one process,
share a stream, and a rerun with the same seed draws the same sequence in each.

A process starts on seed 0.  The stack outlives runs (``doorbuster up`` once, many runs with
different seeds), so the seed is not part of the process's settings: a run sends its own to
``PUT /admin/seed`` before its load starts, and every stream is reseeded in place, so the
objects holding them need not be rebuilt.  ``GET /admin/seed`` says which seed a process
draws from now.

>>> streams = RandomStreams("order-sync", seed=7)
>>> first = [streams.stream("retry/payment").random() for _ in range(3)]
>>> streams.reseed(7)
>>> [streams.stream("retry/payment").random() for _ in range(3)] == first
True
"""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Any

from aiohttp import web

from model.target_config import MAX_SEED, TARGET_SEED_PATH
from targets.web import RequestRefused, read_json_object

__all__ = ["STREAMS_KEY", "RandomStreams", "add_seed_routes", "stream_seed"]


def stream_seed(seed: int, process: str, purpose: str) -> int:
    """The seed of ``process``'s stream for ``purpose`` under the run's ``seed``: a hash, so
    neighbouring seeds or names give unrelated streams, and the same on every machine (Python's
    ``hash()`` of a string is not)."""
    digest = hashlib.sha256(f"{seed}/{process}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class RandomStreams:
    """One process's generators by purpose, all reseeded together by :meth:`reseed`."""

    def __init__(self, process: str, *, seed: int = 0) -> None:
        self.process = process
        self._seed = seed
        self._streams: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    @property
    def seed(self) -> int:
        return self._seed

    def stream(self, purpose: str) -> random.Random:
        """The generator for ``purpose`` (made on first use); the same object ever after."""
        with self._lock:
            found = self._streams.get(purpose)
            if found is None:
                found = self._streams[purpose] = random.Random(stream_seed(self._seed, self.process, purpose))
            return found

    def reseed(self, seed: int) -> None:
        """Every stream restarts from ``seed``, as if it had been made with it."""
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed: expected a whole number from 0 to {MAX_SEED}, got {seed}")
        with self._lock:
            self._seed = seed
            for purpose, rng in self._streams.items():
                rng.seed(stream_seed(seed, self.process, purpose))

    def as_json(self) -> dict[str, Any]:
        return {"process": self.process, "seed": self._seed}


STREAMS_KEY = web.AppKey("random_streams", RandomStreams)


async def _get_seed(request: web.Request) -> web.Response:
    return web.json_response(request.app[STREAMS_KEY].as_json())


async def _put_seed(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    seed = body.get("seed")
    if (
        set(body) != {"seed"}
        or isinstance(seed, bool)
        or not isinstance(seed, int)
        or not 0 <= seed <= MAX_SEED
    ):
        raise RequestRefused(
            422, "invalid_seed", f'expected {{"seed": N}}, N a whole number from 0 to {MAX_SEED}'
        )
    streams = request.app[STREAMS_KEY]
    streams.reseed(seed)
    return web.json_response(streams.as_json())


def add_seed_routes(app: web.Application, streams: RandomStreams) -> None:
    """``GET``/``PUT /admin/seed`` on ``app``, over ``streams``."""
    app[STREAMS_KEY] = streams
    app.router.add_get(TARGET_SEED_PATH, _get_seed)
    app.router.add_put(TARGET_SEED_PATH, _put_seed)
