"""Reading user files: one way to load YAML and one way to word what is wrong in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import yaml

from harness.errors import ConfigError

__all__ = ["read_yaml", "validation_problems"]


def read_yaml(path: Path) -> Any:
    """The parsed file, or ConfigError naming the file and why it could not be read."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: can not read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def validation_problems(exc: pydantic.ValidationError) -> str:
    """``field.path: what was expected; ...`` for every error pydantic found."""
    return "; ".join(
        (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "")
        + str(e["msg"]).removeprefix("Value error, ")
        for e in exc.errors()
    )
