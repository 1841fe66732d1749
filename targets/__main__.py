"""Start one target process: ``python -m targets ROLE --stack FILE [--lane L] [--dependency D]``.

The harness's supervisor runs these; the stack file is the :class:`~model.settings.StackSettings`
it wrote at ``doorbuster up``, so every process derives its addresses from the one topology.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from model.topology import Topology
from targets.async_lane import build_async_app
from targets.brokers import make_broker
from targets.downstream import build_downstream_app
from targets.sync_lane import build_sync_app
from targets.web import serve
from targets.worker import build_worker_app


def build(args: argparse.Namespace, topology: Topology) -> tuple[web.Application, int]:
    registry = CollectorRegistry()
    # process_start_time_seconds tells a restart from a counter that merely grew (a run's
    # counter figures are reset-aware by it).
    ProcessCollector(registry=registry)
    settings = topology.settings
    data_dir = Path(args.data_dir)
    if args.role == "downstream":
        app = build_downstream_app(
            lane=args.lane,
            dependency=args.dependency,
            settings=settings.chain[args.dependency],
            time_scale=settings.time_scale,
            registry=registry,
            data_dir=data_dir,
        )
        return app, topology.ports[f"downstream-{args.lane}-{args.dependency}"]
    if args.role == "order" and args.lane == "sync":
        app = build_sync_app(topology=topology, registry=registry, data_dir=data_dir)
        return app, topology.ports["order-sync"]
    if args.role == "order" and args.lane == "async":
        broker = make_broker(settings.broker, topology.broker_url())
        app = build_async_app(topology=topology, registry=registry, data_dir=data_dir, broker=broker)
        return app, topology.ports["order-async"]
    if args.role == "worker":
        broker = make_broker(settings.broker, topology.broker_url())
        app = build_worker_app(
            topology=topology,
            dependency=args.dependency,
            registry=registry,
            data_dir=data_dir,
            broker=broker,
        )
        return app, topology.ports[f"worker-{args.dependency}"]
    raise SystemExit(f"unknown role {args.role!r} for lane {args.lane!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m targets")
    parser.add_argument("role", choices=["downstream", "order", "worker"])
    parser.add_argument("--stack", required=True, help="the stack file written by doorbuster up")
    parser.add_argument("--lane", choices=["sync", "async"], default="async")
    parser.add_argument("--dependency")
    parser.add_argument("--data-dir", default=".")
    args = parser.parse_args(argv)
    name = "-".join(part for part in (args.role, args.lane, args.dependency) if part)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {name} %(levelname)s %(message)s",
    )
    topology = Topology.from_json(Path(args.stack).read_text())
    app, port = build(args, topology)
    asyncio.run(serve(app, topology.host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
