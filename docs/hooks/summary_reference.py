"""An mkdocs hook that writes the reference of ``summary.json`` from its typed records, at build time.

The run directory's page (``running/runs.md``) holds a marker where the reference goes; the
hook replaces it with every field of :class:`harness.records.summary.Summary` and of the records
under it, each with its one-line description (the ``doc`` in the field's metadata), so the
reference can not drift from what the run writes and every reader reads.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
import typing
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

RECORDS_MODULE = "harness.records.summary"
PAGE = "running/runs.md"
MARKER = "<!-- summary.json reference -->"
# The record whose fields the file holds at its top level, not under its own key.
FLAT = "run"
# (record, field) -> the property the record's JSON holds after that field
DERIVED = {("Verdict", "outcome"): "passed"}


def load_summary(root: Path) -> type:
    """The Summary record of the checkout at ``root``."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(RECORDS_MODULE)
    except ImportError as exc:
        raise PluginError(f"summary_reference: can not import {RECORDS_MODULE}: {exc}") from exc
    summary: type = module.Summary
    return summary


def _records(annotation: Any) -> list[type]:
    """The records an annotation holds (in a list, an object, an alternative)."""
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return [annotation]
    return [r for arg in typing.get_args(annotation) for r in _records(arg)]


def _kind(annotation: Any) -> str:
    """The JSON kind of a field's value, in words."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        # int | float is a figure kept as the writer made it: a number
        kinds = [_kind(float if a is int and float in args else a) for a in args if a is not type(None)]
        kind = " or ".join(dict.fromkeys(kinds))
        return f"{kind} or null" if type(None) in args else kind
    if origin is tuple:
        return f"list of {_kind(args[0])}"
    if origin is dict:
        return f"object of {_kind(args[1])}"
    if typing.get_origin(annotation) is typing.Literal:
        return "text"
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or hasattr(annotation, "model_fields")
    ):
        return "object"
    names = {bool: "true/false", int: "integer", float: "number", str: "text"}
    return names.get(annotation, "any") if isinstance(annotation, type) else "any"


def field_lines(record: type, depth: int = 0) -> list[str]:
    """A Markdown list of the record's fields, nested records under the field that holds them."""
    hints = typing.get_type_hints(record)
    pad = "    " * depth
    lines = []
    for f in dataclasses.fields(record):
        annotation = hints[f.name]
        if f.name == FLAT and depth == 0:
            lines += field_lines(_records(annotation)[0], depth)
            continue
        kind = _kind(annotation)
        if f.metadata.get("omit_none"):
            kind = kind.removesuffix(" or null") + ", absent when there is none"
        lines.append(f"{pad}- `{f.name}` ({kind}): {f.metadata.get('doc', '')}")
        derived = DERIVED.get((record.__name__, f.name))
        if derived is not None:  # a property the record's JSON holds after this field
            lines.append(
                f"{pad}- `{derived}` (true/false): {getattr(record, derived).__doc__.split(' (')[0]}"
            )
        nested = _records(annotation)
        for sub in nested:
            if len(nested) > 1:
                lines.append(f"{pad}    - as {sub.__name__}:")
                lines += field_lines(sub, depth + 2)
            else:
                lines += field_lines(sub, depth + 1)
    return lines


def render(summary: type) -> str:
    """The reference: one line a field, nested as the file nests them."""
    return "\n".join(field_lines(summary)) + "\n"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Put the reference where the run directory's page marks it."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"summary_reference: {PAGE} has no {MARKER} to replace")
    root = Path(config.config_file_path).resolve().parent
    return markdown.replace(MARKER, render(load_summary(root)))
