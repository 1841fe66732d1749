"""Each bench's targets: every figure that has one is printed beside it, and a missed one (or
one that could not be measured) makes the bench exit 1.

>>> report([Target("ratio", 1.14, ">=", 0.9)])  # doctest: +NORMALIZE_WHITESPACE
<BLANKLINE>
targets:
  met     ratio    1.14    >= 0.9
0
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Target", "report"]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    figure: str
    value: float
    op: str
    bound: float
    unit: str = ""

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"target {self.figure!r}: op {self.op!r} is not one of {', '.join(_OPS)}")

    @property
    def met(self) -> bool:
        """A figure that could not be measured (NaN) misses its target."""
        return not math.isnan(self.value) and bool(_OPS[self.op](self.value, self.bound))


def report(targets: Sequence[Target]) -> int:
    """Print every target beside its figure; 0 when all are met, else 1."""
    print("\ntargets:")
    width = max((len(t.figure) for t in targets), default=0)
    for t in targets:
        print(
            f"  {'met' if t.met else 'MISSED':<7} {t.figure:<{width}}    {t.value:g}{t.unit}    {t.op} {t.bound:g}{t.unit}"
        )
    return 0 if all(t.met for t in targets) else 1
