"""An activity's plain JSON arguments, checked and turned into doorbuster's own definitions.

Everything is checked before the stack is looked at; a bad argument raises chaoslib's
``InvalidActivity`` naming the argument and what was expected, and doorbuster's own errors
(a stack not running, Toxiproxy not answering) become ``ActivityFailed`` with doorbuster's
message, so an experiment's journal says what went wrong, not where deep inside it did (the
journal keeps the traceback of what an activity raises: these are raised ``from None``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed, InvalidActivity

from harness.stack.state import default_state_dir
from model.errors import ConfigError, DoorbusterError
from model.faults import FaultSpec
from model.lanes import parse_lane, parse_lane_list
from model.scenario import parse_duration

__all__ = [
    "STATE_DIR_KEY",
    "doorbuster_errors",
    "duration_arg",
    "fault_spec",
    "lane_arg",
    "lanes_arg",
    "positive_int_arg",
    "state_dir",
]

# The experiment's configuration key naming the stack's state directory.
STATE_DIR_KEY = "doorbuster_state_dir"


def state_dir(configuration: Mapping[str, Any] | None) -> Path:
    """The stack's state directory: the configuration's ``doorbuster_state_dir``, else the
    CLI's (``DOORBUSTER_STATE_DIR``, else the default); an empty value means the default."""
    given = (configuration or {}).get(STATE_DIR_KEY)
    if given is None or given == "":
        return default_state_dir()
    if not isinstance(given, str):
        raise InvalidActivity(f"configuration {STATE_DIR_KEY}: expected a directory path, got {given!r}")
    return Path(given).expanduser()


def lane_arg(lane: Any) -> str:
    with _invalid():
        return parse_lane(lane)


def lanes_arg(lanes: Any) -> tuple[str, ...]:
    """``"both"``, ``"sync"``, ``"async"`` or a list of lanes."""
    with _invalid():
        return parse_lane_list(lanes)


def duration_arg(name: str, value: Any, *, most_s: float) -> float:
    """Seconds from ``30``, ``"30s"``, ``"2m"``, ``"500ms"``: positive and at most ``most_s``."""
    with _invalid(f"{name}: "):
        return parse_duration(value, most_s=most_s)


def positive_int_arg(name: str, value: Any, *, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidActivity(f"{name}: expected a whole number from 1 to {most}, got {value!r}")
    return value


def fault_spec(
    *,
    dependency: Any,
    type: Any,
    lanes: Any = "both",
    attributes: Any = None,
    toxicity: Any = 1.0,
    stream: Any = "downstream",
    name: Any = None,
) -> FaultSpec:
    """A :class:`FaultSpec` from JSON values, checked as far as it can be without a stack
    (which dependencies exist is the running topology's: :meth:`FaultSpec.validate`)."""
    with _invalid():
        return FaultSpec.from_json(
            {"dependency": dependency, "type": type, "lanes": lanes, "attributes": attributes,
             "toxicity": toxicity, "stream": stream, "name": name}
        )  # fmt: skip


@contextmanager
def _invalid(prefix: str = "") -> Iterator[None]:
    """A bad argument (model's ConfigError, which names it) as chaoslib's InvalidActivity."""
    try:
        yield
    except ConfigError as exc:
        raise InvalidActivity(f"{prefix}{exc}") from None


@contextmanager
def doorbuster_errors(activity: str) -> Iterator[None]:
    """doorbuster's errors as chaoslib's: a usage error is an invalid activity, the rest failed."""
    try:
        yield
    except ConfigError as exc:
        raise InvalidActivity(f"{activity}: {exc}") from None
    except DoorbusterError as exc:
        raise ActivityFailed(f"{activity}: {type(exc).__name__}: {exc}") from None
