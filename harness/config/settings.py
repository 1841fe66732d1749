"""The stack's settings as the command line gives them: a scenario's, a YAML file over them,
flags over both; checked before any process starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic

from harness.config import systems
from harness.config.files import read_yaml
from model.errors import ConfigError
from model.settings import StackSettings
from model.system import SystemSpec
from model.validation import overlay, validation_problems

__all__ = ["load_settings"]


def load_settings(
    config: Path | None,
    *,
    broker: str | None,
    base_port: int | None,
    toxiproxy_port: int | None,
    time_scale: float | None,
    base: StackSettings | None = None,
    system: str | None = None,
    allow_hosts: tuple[str, ...] = (),
) -> StackSettings:
    """The stack settings: ``base`` (a scenario's), then a YAML file, then flags, each
    overriding the one before; errors name the file and the field."""
    data: dict[str, Any] = base.model_dump(by_alias=True) if base is not None else {}
    if config is not None:
        loaded = read_yaml(config)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{config}: expected a mapping of settings at the top level")
        data = overlay(data, dict(loaded or {}))
    if broker is not None:
        data["broker"] = broker
    if base_port is not None or toxiproxy_port is not None:
        ports = dict(data.get("ports") or {})
        if base_port is not None:
            ports["base"] = base_port
        if toxiproxy_port is not None:
            ports["toxiproxy_api"] = toxiproxy_port
        data["ports"] = ports
    if time_scale is not None:
        data["time_scale"] = time_scale
    if system is not None:
        spec = systems.for_settings(system)
        data["system"] = spec.model_dump(mode="json") if spec is not None else None
    if data.get("system") is not None:
        systems.check_hosts(SystemSpec.model_validate(data["system"]), allow_hosts)
    try:
        return StackSettings.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{config or 'settings'}: {validation_problems(exc)}") from None
