"""The workers' shards of request records merged into the run's one ``requests.jsonl``.

Each worker writes its own records where it runs (``shards/worker-<i>.jsonl``, in the order
its requests ended); after the load they become one log ordered by intended start, each
record checked as any reader checks it, so the verdicts read every record exactly as if one
process had written them. A shard cut off mid-line (its worker killed while writing) is
refused, naming the file and the line, rather than merged short of a record.

    >>> merged_records([])
    []
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from harness.records.run_dir import RunDir
from harness.records.schema import RequestRecord, read_requests

__all__ = ["merge_left_shards", "merge_shards", "merged_records"]


def merged_records(shards: Sequence[Path]) -> list[RequestRecord]:
    """Every record of every shard, by intended start (ties in shard order, then line order);
    ConfigError naming the shard and the line of a record that is not one."""
    records = [rec for shard in shards for rec in read_requests(shard)]
    records.sort(key=lambda rec: rec.intended_start)  # stable: ties keep shard and line order
    return records


def merge_shards(shards: Sequence[Path], out: IO[str]) -> int:
    """The shards' records, merged, written to ``out`` as lines of ``requests.jsonl``; how many."""
    records = merged_records(shards)
    out.writelines(rec.json_line() for rec in records)
    return len(records)


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
