"""An mkdocs hook that writes the CLI reference page from the CLI itself, at build time.

The page is rendered by Typer's own Markdown generator, the one behind
``typer MODULE utils docs --name doorbuster``, from the Typer app imported from this checkout,
so the reference can not drift from the CLI. It is never a file in the repository.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer
import typer.main
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from typer.cli import get_docs_for_click
from typer.core import MARKUP_MODE_KEY

# Where the CLI's Typer app lives: the module, and the app's name in it.
CLI_MODULE = "harness.cli.main"
CLI_APP = "app"
PROGRAM = "doorbuster"
PAGE = "reference/cli.md"
TITLE = "CLI reference"


def load_app(root: Path) -> typer.Typer:
    """The Typer app of the checkout at ``root``, not of whatever doorbuster is installed."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(CLI_MODULE)
    except ImportError as exc:
        raise PluginError(f"cli_reference: can not import {CLI_MODULE} (CLI_MODULE): {exc}") from exc
    app = getattr(module, CLI_APP, None)
    if not isinstance(app, typer.Typer):
        raise PluginError(f"cli_reference: {CLI_MODULE}.{CLI_APP} is not a Typer app")
    return app


def render(app: typer.Typer) -> str:
    """The reference as ``typer MODULE utils docs --name doorbuster`` writes it, under TITLE."""
    command = typer.main.get_command(app)
    # The context `utils docs` renders with: the app's markup mode decides how help is escaped.
    ctx = typer.Context(command, info_name=PROGRAM, obj={MARKUP_MODE_KEY: app.rich_markup_mode})
    body = get_docs_for_click(obj=command, ctx=ctx, name=PROGRAM)
    intro = (
        f"# {TITLE}\n\n"
        f"Generated from the CLI itself (`{CLI_MODULE}`) when these pages are built; "
        f"`{PROGRAM} COMMAND --help` prints the same.\n\n"
    )
    return intro + demote_headings(body.strip()) + "\n"


def demote_headings(markdown: str) -> str:
    """Every heading one level down, outside code blocks: the page has one title, TITLE."""
    lines = []
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if line.startswith("#") and not in_code else line)
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated page to the site's files."""
    root = Path(config.config_file_path).resolve().parent
    files.append(File.generated(config, PAGE, content=render(load_app(root))))
    return files
