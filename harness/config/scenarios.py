"""Scenario files: reading one, by shipped name or path, into a :class:`~model.scenario.Scenario`.

A scenario is loaded and validated completely before anything starts; a bad file gets a
:class:`ConfigError` naming the file, the field and what was expected (exit 2).  What a
scenario holds (the load, the chaos timeline, the expectations) is defined in model.scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic

from harness.binaries import PROJECT_ROOT
from harness.config import systems
from harness.config.files import read_yaml, shipped, shipped_or_path
from model.errors import ConfigError
from model.scenario import Scenario
from model.topology import LANES
from model.validation import validation_problems

__all__ = ["SCENARIO_DIR", "load_scenario", "shipped_scenarios"]

SCENARIO_DIR = PROJECT_ROOT / "scenarios"


def shipped_scenarios() -> list[str]:
    return shipped(SCENARIO_DIR)


def load_scenario(
    name_or_path: str, *, overrides: dict[str, Any] | None = None, system: str | None = None
) -> tuple[Scenario, Path]:
    """A shipped scenario by name, or a YAML file by path; validated, or ConfigError.

    Its system is ``system`` (``--system``), else the file's ``system:``, else the checkout."""
    path = shipped_or_path(name_or_path, SCENARIO_DIR, kind="scenario")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, load, chaos and expectations")
    for key, value in (overrides or {}).items():
        _set_path(data, key, value)
    _put_system(data, path, system)
    _put_replay_beside(data, path)
    try:
        return Scenario.model_validate(data), path
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None


def _put_system(data: dict[str, Any], path: Path, system: str | None) -> None:
    """The named system file, read into ``stack.system``; its lanes are the load's by default."""
    named = data.pop("system", None)
    if system is None and named is None:
        return
    if system is None:
        if not isinstance(named, str):
            raise ConfigError(f"{path}: system: expected the name of a system or a path to its file")
        # A relative path is read beside the scenario file when it is there.
        beside = path.parent / named
        relative = bool(Path(named).suffix) and not Path(named).is_absolute()
        system = str(beside) if relative and beside.exists() else named
    spec = systems.for_settings(system)
    if spec is None:
        return
    stack = data.setdefault("stack", {})
    if not isinstance(stack, dict):
        raise ConfigError(f"{path}: stack: expected a mapping of settings")
    stack["system"] = spec.model_dump(mode="json")
    load = data.get("load")
    if isinstance(load, dict) and "lanes" not in load:
        load["lanes"] = [lane for lane in LANES if lane in spec.lanes]


def _put_replay_beside(data: dict[str, Any], path: Path) -> None:
    """A replayed access log named by a relative path is the one beside the scenario file."""
    load = data.get("load")
    replay = load.get("replay") if isinstance(load, dict) else None
    named = replay.get("file") if isinstance(replay, dict) else None
    if isinstance(named, str) and named and not Path(named).is_absolute():
        replay["file"] = str((path.parent / named).resolve())  # type: ignore[index]


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value
