"""The house's layering, read from the source: who may import whom, and no import cycles.

    model        pure definitions, no I/O; imports none of the layers above it
    harness      the control plane; may import model (and start the others as processes)
    targets      the system under test; may import model, never harness or locustfiles
    locustfiles  traffic; may import model, never targets
    chaosdoorbuster  the Chaos Toolkit extension; may import harness and model, none imports it

Inside ``harness`` each package imports only the packages before it in ``HARNESS_ORDER``
(and itself): the CLI sits on everything, nothing sits on the CLI.

Every ``import`` counts, those inside functions too: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.binaries import PROJECT_ROOT

PACKAGES = ("model", "harness", "targets", "locustfiles", "bench", "chaosdoorbuster")
# The folder each package sits in, from the project's root: the Chaos Toolkit extension is a
# distribution of its own, its package one folder down beside its pyproject.toml.
SOURCE_FOLDERS = {"chaosdoorbuster": Path("chaosdoorbuster")}

# Which of the project's packages a layer must not import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "model": frozenset({"harness", "targets", "locustfiles", "bench", "chaosdoorbuster"}),
    "harness": frozenset({"chaosdoorbuster"}),
    "targets": frozenset({"harness", "locustfiles", "bench", "chaosdoorbuster"}),
    "locustfiles": frozenset({"targets", "bench", "chaosdoorbuster"}),
}

# harness's packages (and its two top-level modules), lowest first.
HARNESS_ORDER = (
    "binaries",
    "processes",
    "config",
    "records",
    "metrics",
    "faults",
    "stack",
    "load",
    "analysis",
    "report",
    "run",
    "sweep",
    "live",
    "cli",
)
# Modules of one concept stay short enough to read in one sitting.
MAX_MODULE_LINES = 500
MAX_TOP_LEVEL_MODULES = 12

# Modules that do I/O; a model module importing one is no longer a pure definition.
# Modules of those packages that only compute: splitting a URL is not reading one.
PURE_MODULES = frozenset({"urllib.parse"})
IO_MODULES = frozenset(
    {"aiohttp", "http", "httpx", "requests", "shutil", "socket", "subprocess", "urllib", "urllib3"}
)
# Calls that read or write files.
IO_CALLS = frozenset({"open", "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "unlink"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports, resolved to a dotted name
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def module_files(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        folder = root / SOURCE_FOLDERS.get(package, Path())
        for path in sorted((folder / package).rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """What ``name`` imports, as dotted names; ``from p import m`` names the module ``p.m``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".") if is_package else name.split(".")[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Import(name, submodule if submodule in modules else base, node.lineno)


def project_imports(root: Path = PROJECT_ROOT) -> list[Import]:
    modules = module_files(root)
    return [found for name, path in modules.items() for found in imports_of(name, path, modules)]


def layering_violations(imports: list[Import]) -> list[str]:
    """Each import a layer must not make, as ``module (line n) imports target``."""
    found = []
    for imp in imports:
        layer = imp.module.split(".")[0]
        top = imp.target.split(".")[0]
        if top in FORBIDDEN.get(layer, frozenset()):
            found.append(f"{imp}: {layer}/ must not import {top}/")
        elif layer == "model" and top in IO_MODULES and imp.target not in PURE_MODULES:
            found.append(f"{imp}: model/ holds pure definitions and does no I/O")
    return found


def harness_order_violations(imports: list[Import], modules: dict[str, Path]) -> list[str]:
    """Each import inside harness that goes up or across ``HARNESS_ORDER``, and each module of
    harness that belongs to no package of it."""
    rank = {name: i for i, name in enumerate(HARNESS_ORDER)}
    found = [
        f"{name}: not in a package of harness's order {HARNESS_ORDER}"
        for name in modules
        if name.startswith("harness.") and name.split(".")[1] not in rank
    ]
    for imp in imports:
        source, target = imp.module.split("."), imp.target.split(".")
        if source[0] != "harness" or len(source) < 2 or source[1] not in rank:
            continue
        if target[0] != "harness" or len(target) < 2 or target[1] == source[1]:
            continue
        if target[1] not in rank or rank[target[1]] > rank[source[1]]:
            found.append(f"{imp}: harness.{source[1]} must not import harness.{target[1]} (above it)")
    return sorted(set(found))


def long_modules(modules: dict[str, Path]) -> list[str]:
    found = []
    for name, path in modules.items():
        if name.split(".")[0] in ("harness", "locustfiles"):
            lines = len(path.read_text().splitlines())
            if lines > MAX_MODULE_LINES:
                found.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
    return found


def io_calls_in_model(modules: dict[str, Path]) -> list[str]:
    found = []
    for name, path in modules.items():
        if not name.startswith("model"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if called in IO_CALLS:
                found.append(f"{name} (line {node.lineno}) calls {called}(): model/ does no I/O")
    return found


@dataclass(frozen=True)
class ImportCycle:
    path: list[str]  # one closed path, ``a -> b -> a``
    modules: list[str]  # every module of its strongly connected group

    def __str__(self) -> str:
        return " -> ".join(self.path) + f" (the cycle's modules: {', '.join(self.modules)})"


def import_cycles(imports: list[Import], modules: dict[str, Path]) -> list[ImportCycle]:
    """The project's import cycles: each strongly connected group of modules, with one cycle
    through it, by Tarjan's algorithm."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in imports:
        if imp.target in modules and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [ImportCycle(path=_cycle_through(group, graph), modules=sorted(group)) for group in groups]


def _cycle_through(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """One closed path inside a strongly connected group, from its first module back to it."""
    start = min(group)
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first, so the cycle shown is a shortest one through ``start``
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"{sorted(group)} is not strongly connected")


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return module_files()


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return project_imports()


def test_every_package_is_read(modules: dict[str, Path]) -> None:
    read = {name.split(".")[0] for name in modules}
    assert read == set(PACKAGES), f"no modules read for {sorted(set(PACKAGES) - read)}"
    assert {"chaosdoorbuster.actions", "chaosdoorbuster.probes"} <= modules.keys()


def test_every_layer_imports_only_what_it_may(imports: list[Import]) -> None:
    violations = layering_violations(imports)
    assert not violations, "\n".join(violations)


def test_harness_packages_import_only_downward(imports: list[Import], modules: dict[str, Path]) -> None:
    violations = harness_order_violations(imports, modules)
    assert not violations, "\n".join(violations)


def test_modules_are_short_and_harness_has_few_top_level_modules(modules: dict[str, Path]) -> None:
    long = long_modules(modules)
    assert not long, "\n".join(long)
    top = [name for name, path in modules.items() if name.count(".") == 1 and name.startswith("harness.")]
    top = [name for name in top if modules[name].name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"harness/ has {len(top)} top-level modules: {top}"


def test_the_model_reads_and_writes_no_files(modules: dict[str, Path]) -> None:
    calls = io_calls_in_model(modules)
    assert not calls, "\n".join(calls)


def test_no_import_cycles(imports: list[Import], modules: dict[str, Path]) -> None:
    cycles = import_cycles(imports, modules)
    assert not cycles, "import cycles:\n" + "\n".join(str(cycle) for cycle in cycles)


# The checks themselves, on small made-up projects: a check that can not fail is no check.
def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in PACKAGES:
        (tmp_path / SOURCE_FOLDERS.get(package, Path()) / package).mkdir(parents=True)
        (tmp_path / SOURCE_FOLDERS.get(package, Path()) / package / "__init__.py").write_text("")
    for name, text in files.items():
        path = tmp_path / name
        for folder in reversed(path.relative_to(tmp_path).parents[:-2]):
            (tmp_path / folder).mkdir(exist_ok=True)
            (tmp_path / folder / "__init__.py").touch()
        path.write_text(text)
    return tmp_path


def test_a_forbidden_import_is_named_with_its_module_and_line(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "targets/app.py": "import json\n\ndef f():\n    from harness.run.runner import x\n",
            "locustfiles/users.py": "from targets import app\n",
            "model/thing.py": "import subprocess\n",
            "harness/run/runner.py": "from targets.app import f\nfrom model import thing\n",
        },
    )
    assert sorted(layering_violations(project_imports(root))) == [
        "locustfiles.users (line 1) imports targets.app: locustfiles/ must not import targets/",
        "model.thing (line 1) imports subprocess: model/ holds pure definitions and does no I/O",
        "targets.app (line 4) imports harness.run.runner: targets/ must not import harness/",
    ]


def test_the_extension_is_read_from_its_own_distributions_folder(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "chaosdoorbuster/chaosdoorbuster/probes.py": "from harness.run import runner\n",
            "harness/run/runner.py": "def f():\n    from chaosdoorbuster.probes import x\n",
        },
    )
    assert "chaosdoorbuster.probes" in module_files(root)
    assert layering_violations(project_imports(root)) == [
        "harness.run.runner (line 2) imports chaosdoorbuster.probes: harness/ must not import chaosdoorbuster/"
    ]


def test_an_upward_import_inside_harness_is_named(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "harness/analysis/figures.py": "def f():\n    from harness.report.page import x\n",
            "harness/report/page.py": "from harness.analysis.figures import f\n",
            "harness/loose.py": "",
        },
    )
    assert harness_order_violations(project_imports(root), module_files(root)) == [
        "harness.analysis.figures (line 2) imports harness.report.page:"
        " harness.analysis must not import harness.report (above it)",
        f"harness.loose: not in a package of harness's order {HARNESS_ORDER}",
    ]


def test_a_long_module_is_named(tmp_path: Path) -> None:
    root = _project(tmp_path, {"harness/big.py": "x = 1\n" * (MAX_MODULE_LINES + 1)})
    assert long_modules(module_files(root)) == [f"harness.big: {MAX_MODULE_LINES + 1} lines (at most 500)"]


def test_file_io_in_the_model_is_named(tmp_path: Path) -> None:
    root = _project(tmp_path, {"model/thing.py": "from pathlib import Path\n\nX = Path('a').read_text()\n"})
    assert io_calls_in_model(module_files(root)) == [
        "model.thing (line 3) calls read_text(): model/ does no I/O"
    ]


def test_a_cycle_is_found_through_relative_and_deferred_imports(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "harness/report/run_page.py": "from . import shootout\n",
            "harness/report/shootout.py": "def f():\n    import harness.report.run_page\n",
            "harness/run/runner.py": "from harness.report.run_page import x\n",
        },
    )
    imports = project_imports(root)
    assert [str(cycle) for cycle in import_cycles(imports, module_files(root))] == [
        "harness.report.run_page -> harness.report.shootout -> harness.report.run_page"
        " (the cycle's modules: harness.report.run_page, harness.report.shootout)"
    ]
