"""``compare.html``: two runs' figures and verdicts side by side, rendered from a Jinja2
template (``harness/report/templates/compare.html``) filled with a :class:`RunComparison`."""

from __future__ import annotations

from pathlib import Path

import jinja2

from harness.analysis.compare import RunComparison
from harness.report.parts import OUTCOME_WORDS, STYLE
from model.errors import ConfigError

__all__ = ["check_page_path", "compare_page", "write_compare_page"]

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_COLOURS = {"regressed": "#c0392b", "undetermined": "#9a7d0a", "within bound": "#1e8449"}


def compare_page(comparison: RunComparison) -> str:
    """The page's HTML."""
    status = (
        "regressed" if comparison.regressed else "undetermined" if comparison.undetermined else "within bound"
    )
    return _TEMPLATES.get_template("compare.html").render(
        c=comparison,
        style=STYLE,
        words=OUTCOME_WORDS,
        headline=comparison.headline,
        headline_colour=_COLOURS[status],
    )


def check_page_path(path: Path) -> None:
    """ConfigError (exit 2) if ``path`` is a folder or in none."""
    if path.is_dir():
        raise ConfigError(f"--html {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"--html {path}: no directory {path.parent} to write it in")


def write_compare_page(path: Path, comparison: RunComparison) -> None:
    """Write :func:`compare_page` to ``path``; ConfigError naming it if it can not be written."""
    check_page_path(path)
    try:
        path.write_text(compare_page(comparison), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--html {path}: can not write it ({exc.strerror or exc})") from None
