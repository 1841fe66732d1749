"""Start one target process: ``python -m targets [--config-json JSON | --config-file FILE --process NAME]``.

Its whole configuration is one :class:`~model.target_config.TargetConfig`, resolved by whoever
starts it: doorbuster's supervisor puts its JSON in ``DOORBUSTER_TARGET_CONFIG``;
docker-compose mounts a file of them, by process name.  Nothing here derives an address.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from pydantic import ValidationError

from model.target_config import TARGET_CONFIG_ENV, TargetConfig, TargetConfigs
from targets.async_lane import build_async_app
from targets.brokers import make_broker
from targets.downstream import build_downstream_app
from targets.sync_lane import build_sync_app
from targets.web import serve
from targets.worker import build_worker_app


def build(config: TargetConfig) -> web.Application:
    registry = CollectorRegistry()
    # process_start_time_seconds tells a restart from a counter that merely grew (a run's
    # counter figures are reset-aware by it).
    ProcessCollector(registry=registry)
    settings = config.settings
    if config.role == "downstream" and config.dependency is not None:
        return build_downstream_app(
            lane=config.lane,
            dependency=config.dependency,
            settings=settings.chain[config.dependency],
            time_scale=settings.time_scale,
            registry=registry,
            data_dir=config.data_dir,
        )
    if config.role == "order" and config.lane == "sync":
        return build_sync_app(config=config, registry=registry, data_dir=config.data_dir)
    if config.broker_url is None:
        raise SystemExit(f"{config.name}: no broker_url")
    broker = make_broker(settings.broker, config.broker_url)
    if config.role == "order":
        return build_async_app(config=config, registry=registry, data_dir=config.data_dir, broker=broker)
    return build_worker_app(config=config, registry=registry, data_dir=config.data_dir, broker=broker)


def read_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TargetConfig:
    """The configuration the arguments (or the environment) name; a bad one exits 2."""
    try:
        if args.config_file is not None:
            if args.process is None:
                parser.error("--config-file needs --process NAME")
            configs = TargetConfigs.model_validate_json(Path(args.config_file).read_text()).root
            if args.process not in configs:
                parser.error(f"{args.config_file}: no process {args.process!r}; it has {sorted(configs)}")
            return configs[args.process]
        text = args.config_json if args.config_json is not None else os.environ.get(TARGET_CONFIG_ENV)
        if text is None:
            parser.error(f"no configuration: give --config-json, --config-file or {TARGET_CONFIG_ENV}")
        return TargetConfig.model_validate_json(text)
    except (OSError, ValidationError) as exc:
        parser.error(f"bad configuration: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m targets")
    parser.add_argument("--config-json", help=f"a TargetConfig as JSON (default: ${TARGET_CONFIG_ENV})")
    parser.add_argument("--config-file", help="a JSON file of TargetConfigs by process name")
    parser.add_argument("--process", help="which process of --config-file this is")
    config = read_config(parser.parse_args(argv), parser)
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {config.name} %(levelname)s %(message)s",
    )
    app = build(config)
    asyncio.run(serve(app, config.host, config.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
