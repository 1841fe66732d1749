"""The manual builds strictly, every page is in its nav, and the README stays its short first page.

``mkdocs build --strict`` turns every warning into a failure: a link to a page or an anchor that
does not exist, a nav entry without a file, a page left out of the nav (``validation`` in
mkdocs.yml makes each of these a warning).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from harness.binaries import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
MKDOCS_YML = PROJECT_ROOT / "mkdocs.yml"
README_MAX_LINES = 200
# Pages the build writes itself (docs/hooks/cli_reference.py): in the nav, never on disk.
GENERATED = frozenset({"reference/cli.md"})
# A Markdown link or image to a file of this repository: not a URL, not an anchor alone.
RELATIVE_LINK = re.compile(r"\]\((?![a-z]+:|#)([^)#\s]+)")


def nav_pages(nav: object) -> list[str]:
    """Every page a nav names, in order.

    >>> nav_pages([{"Home": "index.md"}, {"Runs": [{"Scenarios": "running/scenarios.md"}]}])
    ['index.md', 'running/scenarios.md']
    """
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    raise TypeError(f"not a nav entry: {nav!r}")


def doc_pages() -> set[str]:
    """Every Markdown page under docs/ (the hooks are code, not pages)."""
    return {
        path.relative_to(DOCS).as_posix()
        for path in DOCS.rglob("*.md")
        if path.relative_to(DOCS).parts[0] != "hooks"
    }


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    build = subprocess.run(
        [*command, "--config-file", str(MKDOCS_YML), "--site-dir", str(site)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr}{build.stdout}"
    cli_page = (site / "reference" / "cli" / "index.html").read_text()
    for name in ("doorbuster run", "doorbuster sweep", "doorbuster toxic add"):
        assert name in cli_page, f"the generated CLI reference does not describe {name}"
    runs_page = (site / "running" / "runs" / "index.html").read_text()
    assert "summary.json reference" not in runs_page and "<code>drained_after_load_s</code>" in runs_page


def test_every_page_is_in_the_nav() -> None:
    nav = nav_pages(yaml.safe_load(MKDOCS_YML.read_text())["nav"])
    assert len(nav) == len(set(nav)), f"a page is twice in the nav: {sorted(nav)}"
    on_disk = doc_pages()
    assert not on_disk - set(nav), f"pages missing from the nav: {sorted(on_disk - set(nav))}"
    missing = set(nav) - on_disk - GENERATED
    assert not missing, f"nav entries without a file: {sorted(missing)}"


def test_the_readme_is_short() -> None:
    lines = len((PROJECT_ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}"


def test_the_readmes_links_lead_somewhere() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    targets = RELATIVE_LINK.findall(readme)
    assert targets, "the README links to no page of the manual"
    missing = sorted({target for target in targets if not (PROJECT_ROOT / target).exists()})
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_summary_reference_names_every_field_of_the_typed_summary() -> None:
    """docs/hooks/summary_reference.py renders summary.json's reference from its records: every
    field of every record under Summary is named, with its description."""
    import dataclasses
    import importlib.util
    import typing

    from harness.records.summary import Summary

    spec = importlib.util.spec_from_file_location(
        "summary_reference", DOCS / "hooks" / "summary_reference.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    reference = hook.render(Summary)

    def records(annotation: object) -> list[type]:
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            return [annotation]
        return [r for arg in typing.get_args(annotation) for r in records(arg)]

    seen: set[type] = set()
    todo: list[type] = [Summary]
    named = 0
    while todo:
        record = todo.pop()
        seen.add(record)
        hints = typing.get_type_hints(record)
        for f in dataclasses.fields(record):
            todo += [r for r in records(hints[f.name]) if r not in seen]
            if f.name == "run" and record is Summary:
                continue  # written flat: its fields are named at the top level
            doc = f.metadata.get("doc")
            assert doc, f"{record.__name__}.{f.name} has no description"
            assert f"`{f.name}` (" in reference and doc in reference, f"{record.__name__}.{f.name}"
            named += 1
    assert named > 100 and "- `passed` (true/false): true only for pass" in reference
    assert hook.MARKER in (DOCS / "running" / "runs.md").read_text()
