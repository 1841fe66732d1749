from __future__ import annotations

import os
from pathlib import Path

import pytest

# The project's own binaries (Toxiproxy built by scripts/setup) come first, for every test.
_ROOT = Path(__file__).resolve().parent.parent
os.environ["PATH"] = f"{_ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

# Session fixtures that start a stack on fixed ports (tests/integration/conftest.py): a module
# that uses one is grouped with every other module that uses it.
SHARED_STACKS = ("running", "broker_stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each module in one xdist group, named for the shared stack it uses, if any.

    With ``-n 2 --dist loadgroup`` (pytest-xdist) a group runs in one worker: a module's
    fixtures start once, and the modules sharing a session's stack share one worker, so two
    workers never start the same stack on the same ports.  Without xdist the marks do nothing.
    """
    shared: dict[Path, set[str]] = {}
    for item in items:
        used = set(SHARED_STACKS) & set(getattr(item, "fixturenames", ()))
        shared.setdefault(item.path, set()).update(used)
    for item in items:
        stacks = shared[item.path]
        assert len(stacks) <= 1, f"{item.path} uses {sorted(stacks)}: one worker could not hold both"
        name = f"stack:{next(iter(stacks))}" if stacks else str(item.path.relative_to(_ROOT))
        item.add_marker(pytest.mark.xdist_group(name))
