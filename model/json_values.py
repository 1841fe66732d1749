"""Values from JSON (a page's request body, an experiment's arguments), checked one field at a
time: each refusal is a :class:`~model.errors.ConfigError` that names the field and says what
was expected, so whoever sent it can fix it without reading the code.

>>> text_value({"dependency": "payment"}, "dependency", expected="a name", required=True)
'payment'
>>> number_value("toxicity", 0.5)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from model.errors import ConfigError

__all__ = ["number_value", "object_of", "refuse_unknown", "text_value"]


def object_of(data: Any) -> dict[str, Any]:
    """``data`` if it is a JSON object (a dict), else ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object")
    return data


def refuse_unknown(data: Mapping[str, Any], known: Collection[str]) -> None:
    """ConfigError naming every field that is not one of ``known`` (a typo is not ignored)."""
    extra = sorted(set(data) - set(known))
    if extra:
        raise ConfigError(f"unknown field(s) {', '.join(extra)}; expected {', '.join(sorted(known))}")


def text_value(data: Mapping[str, Any], key: str, *, expected: str, required: bool) -> str | None:
    """``data[key]``, a non-empty string; None if it is absent (or null) and not ``required``."""
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{key}: required")
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    return value


def number_value(key: str, value: Any) -> int | float:
    """``value`` if it is a finite number (not true or false, not NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        # Said both ways: "a number" is what was missed, "a finite number" the whole rule.
        raise ConfigError(f"{key}: expected a number, got {value!r} ({key}: expected a finite number)")
    if not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    return value
