"""Which lanes a command, a page or an activity means: one parser for ``sync | async | both``.

The CLI's ``--lane``, the live view's ``lane`` and the Chaos Toolkit extension's ``lane`` and
``lanes`` all go through here, so "both" means the same two lanes, in the same order, everywhere.

>>> parse_lanes("both"), parse_lanes("async"), parse_lane_list(["async", "sync", "async"])
(('sync', 'async'), ('async',), ('async', 'sync'))
"""

from __future__ import annotations

from typing import Any

from model.errors import ConfigError
from model.topology import LANES

__all__ = ["parse_lane", "parse_lane_list", "parse_lanes"]


def parse_lane(value: Any, *, field: str = "lane") -> str:
    """Exactly one lane: ``sync`` or ``async`` (not ``both``); ConfigError naming ``field``."""
    if not isinstance(value, str) or value not in LANES:
        raise ConfigError(f"{field}: expected one of {', '.join(LANES)}, got {value!r}")
    return value


def parse_lanes(value: Any, *, field: str = "lane") -> tuple[str, ...]:
    """``"sync"``, ``"async"`` or ``"both"`` -> the lanes meant; ConfigError naming ``field``."""
    if value == "both":
        return LANES
    if not isinstance(value, str) or value not in LANES:
        raise ConfigError(f"{field}: expected {', '.join(LANES)} or both, got {value!r}")
    return (value,)


def parse_lane_list(value: Any, *, field: str = "lanes") -> tuple[str, ...]:
    """What JSON can say besides :func:`parse_lanes`: ``"both"``, one lane, or a non-empty list
    of lanes (each once, in the order given); a lone string or an element is one lane."""
    if value == "both":
        return LANES
    if isinstance(value, str):
        return (parse_lane(value),)
    if isinstance(value, list) and value:
        return tuple(dict.fromkeys(parse_lane(lane) for lane in value))
    raise ConfigError(f"{field}: expected both, {', '.join(LANES)} or a list of lanes, got {value!r}")
