"""Helpers for reading user files into models: sections laid over one another, and pydantic's
errors as one message that names each field."""

from __future__ import annotations

from typing import Any

import pydantic

__all__ = ["overlay", "validation_problems"]


def validation_problems(exc: pydantic.ValidationError) -> str:
    """``field.path: what was expected; ...`` for every error pydantic found."""
    return "; ".join(
        (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "")
        + str(e["msg"]).removeprefix("Value error, ")
        for e in exc.errors()
    )


def overlay(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section (a file's ``sync: {timeout_s: 3}``
    keeps the scenario's ``sync.threads``).

    >>> overlay({"sync": {"threads": 96, "queue": 64}}, {"sync": {"queue": 8}})
    {'sync': {'threads': 96, 'queue': 8}}
    """
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = value
    return merged
