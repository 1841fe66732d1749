"""System files: finding, reading and checking them (``--system FILE``, a scenario's ``system:``).

A system is named like a scenario: a file under ``systems/`` by its stem, or a path.  A bad
file gets a :class:`ConfigError` naming the file, the field and what was expected (exit 2),
before anything starts.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pydantic

from harness.binaries import PROJECT_ROOT
from harness.config.files import read_yaml, shipped, shipped_or_path
from model.errors import ConfigError
from model.system import SystemSpec, placeholders
from model.topology import is_loopback
from model.validation import validation_problems

__all__ = ["DEFAULT_SYSTEM", "SYSTEM_DIR", "check_hosts", "default_system", "load_system", "shipped_systems"]

SYSTEM_DIR = PROJECT_ROOT / "systems"
DEFAULT_SYSTEM = "checkout"


def shipped_systems() -> list[str]:
    return shipped(SYSTEM_DIR)


def load_system(name_or_path: str) -> SystemSpec:
    """A shipped system by name, or a system file by path; validated, or ConfigError."""
    path = shipped_or_path(name_or_path, SYSTEM_DIR, kind="system")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with name, services, dependencies and lanes")
    try:
        return SystemSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None


def default_system() -> SystemSpec:
    """The built-in checkout's own file, ``systems/checkout.yaml``."""
    return load_system(DEFAULT_SYSTEM)


def for_settings(name_or_path: str) -> SystemSpec | None:
    """The ``StackSettings.system`` a named system file stands for: None for the default
    checkout as shipped (so that a stack is the same stack, named or not)."""
    spec = load_system(name_or_path)
    return None if spec == default_system() else spec


def check_hosts(spec: SystemSpec, allow_hosts: tuple[str, ...] = ()) -> None:
    """Load and faults stay on loopback unless the user allows a host (``--allow-host``)."""
    found: list[tuple[str, str]] = []
    for service in spec.services:
        if service.url is not None:
            found.append((f"services.{service.name}.url", str(urlsplit(service.url).hostname)))
    for dep in spec.dependencies:
        if not placeholders(dep.upstream):
            found.append((f"dependencies.{dep.name}.upstream", dep.upstream.rpartition(":")[0]))
    for lane, request in spec.lanes.items():
        if not placeholders(request.url.split("/")[2] if "//" in request.url else request.url):
            found.append((f"lanes.{lane}.url", str(urlsplit(request.url).hostname)))
    for where, host in found:
        if not is_loopback(host) and host not in allow_hosts:
            raise ConfigError(
                f"system {spec.name}: {where} is {host}, off this machine; doorbuster sends load "
                f"and faults only to 127.0.0.0/8 and ::1 unless you allow it with --allow-host {host}"
            )
