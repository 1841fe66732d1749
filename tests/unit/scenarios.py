"""The made-up scenario the analysis' unit tests judge runs against: a ``baseline`` stage and
a ``rest`` stage at one rate, a fault (by default ``trigger``: email 1 ms slower for 10 s from
the baseline's end), and the parts that vary between tests given by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model.scenario import Scenario

__all__ = ["made_up_data", "made_up_scenario", "trigger_step"]


def trigger_step(*, at: float, name: str = "trigger", for_s: float = 10) -> dict[str, Any]:
    """A chaos step: email 1 ms slower (a fault the made-up rows decide the effect of)."""
    return {"name": name, "at": at, "for": for_s, "dependency": "email", "type": "latency",
            "attributes": {"latency": 1}}  # fmt: skip


def made_up_data(
    *,
    baseline_s: float = 20,
    rest_s: float = 60,
    rate: float = 2,
    chaos: Sequence[Mapping[str, Any]] | None = None,
    metastability: Mapping[str, Any] | None = None,
    impatient: Mapping[str, Any] | None = None,
    expectations: Sequence[str] = (),
) -> dict[str, Any]:
    """The scenario as its file would have it. ``chaos``: the trigger at the baseline's end
    unless given; ``metastability``: a 40 s observation window unless given."""
    load: dict[str, Any] = {
        "stages": [
            {"name": "baseline", "duration": baseline_s, "rate": rate},
            {"name": "rest", "duration": rest_s, "rate": rate},
        ]
    }
    if impatient is not None:
        load["impatient"] = dict(impatient)
    return {
        "name": "made-up",
        "metastability": dict(metastability) if metastability is not None else {"window": 40},
        "load": load,
        "chaos": [dict(step) for step in chaos] if chaos is not None else [trigger_step(at=baseline_s)],
        "expectations": list(expectations),
    }


def made_up_scenario(**parts: Any) -> Scenario:
    """:func:`made_up_data`'s scenario, validated."""
    return Scenario.model_validate(made_up_data(**parts))
