"""The workers' shards of request records merged into the run's one ``requests.jsonl``.

Each worker writes its own records where it runs (``shards/worker-<i>.jsonl``, in the order
its requests ended); after the load they become one log ordered by intended start, each
record checked as any reader checks it, so the verdicts read every record exactly as if one
process had written them. A shard its worker never closed (still ``.jsonl.part``: the worker
was lost mid-run) may end in a line cut off mid-write: that line is dropped and counted
(:attr:`ShardState.torn_lines`), since whatever the worker wrote before it is whole. Any other
line that is not a record is refused, naming the file and the line.

    >>> merged_records([])
    []
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.config.files import parsed_json_lines, read_text
from harness.records.run_dir import SHARD_WRITING, RunDir
from harness.records.schema import RequestRecord

__all__ = ["ShardState", "merge_left_shards", "merge_shards", "merged_records", "read_shard", "shard_states"]


@dataclass(frozen=True, kw_only=True)
class ShardState:
    """How a worker left its shard: closed (renamed from ``.part``) or not, and how many lines
    cut off mid-write were dropped from its end (0 or 1)."""

    worker: str
    closed: bool
    torn_lines: int = 0


def _worker_of(path: Path) -> str:
    """``worker-3.jsonl.part`` -> ``3``."""
    return path.name.removesuffix(SHARD_WRITING).removesuffix(".jsonl").removeprefix("worker-")


def _whole_record(line: str) -> bool:
    try:
        RequestRecord.from_json(json.loads(line))
    except (ValueError, TypeError, KeyError, IndexError):
        return False
    return True


def read_shard(path: Path) -> tuple[ShardState, list[RequestRecord]]:
    """A shard's state and records; ConfigError naming the shard and the line of a record that
    is not one, except a never-closed shard's last line cut off mid-write, dropped and counted."""
    text = read_text(path)
    closed = not path.name.endswith(SHARD_WRITING)
    torn = 0
    if not closed and text and not text.endswith("\n"):
        head, _, last = text.rpartition("\n")
        # A worker writes whole lines; one without its newline is where the worker was cut off
        # (unless the cut fell just before the newline: then the record is whole, and kept).
        if not _whole_record(last):
            text, torn = head, 1
    records = parsed_json_lines(text, RequestRecord.from_json, what="a request record", where=path)
    return ShardState(worker=_worker_of(path), closed=closed, torn_lines=torn), records


def merged_records(shards: Sequence[Path]) -> list[RequestRecord]:
    """Every record of every shard, by intended start (ties in shard order, then line order);
    ConfigError naming the shard and the line of a record that is not one."""
    records = [rec for shard in shards for rec in read_shard(shard)[1]]
    records.sort(key=lambda rec: rec.intended_start)  # stable: ties keep shard and line order
    return records


def merge_shards(shards: Sequence[Path], out: IO[str]) -> int:
    """The shards' records, merged, written to ``out`` as lines of ``requests.jsonl``; how many."""
    records = merged_records(shards)
    out.writelines(rec.json_line() for rec in records)
    return len(records)


def shard_states(run_dir: RunDir) -> tuple[ShardState, ...]:
    """How each worker left its shard in the run directory (none for a single process's run)."""
    return tuple(read_shard(path)[0] for path in run_dir.shard_files())


def merge_left_shards(run_dir: RunDir) -> int:
    """After the load, the shards merged into an empty ``requests.jsonl``, when the master did
    not merge them (it was killed, or it refused a shard: then this names the shard's bad line,
    rather than the run judging an empty log); how many records. A log that holds records is
    the master's merge, left as it is."""
    shards = run_dir.shard_files()
    log = run_dir.requests
    if not shards or (log.exists() and log.stat().st_size > 0):
        return 0
    with log.open("a") as out:
        return merge_shards(shards, out)
