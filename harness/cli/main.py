"""The ``doorbuster`` command line.

This module only parses and dispatches: the Typer app, its root options, and each command
registered from :mod:`harness.cli.commands` (a command parses, calls one function below the
CLI, renders the data it returns, and raises an exit code).  One exit point: :func:`main`
runs the app, catches :class:`DoorbusterError` once and prints ``ErrorType: message``; exit
codes are 0 success, 1 expectations failed, 2 usage or configuration error, 3 environment error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli.commands import catalogue, compare, faults, run, stack, sweep
from harness.cli.context import ctx, err
from model.errors import DoorbusterError, ExitCode

__all__ = ["app", "main"]


app = typer.Typer(
    help="Load and chaos harness: a sync request chain beside a queue-backed design.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
toxic_app = typer.Typer(help="Add, list and remove faults (Toxiproxy toxics and HTTP faults).")
proxy_app = typer.Typer(help="Take a dependency's proxy down or bring it back.")
app.add_typer(toxic_app, name="toxic")
app.add_typer(proxy_app, name="proxy")


@app.callback()
def _root(
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the stack keeps its state (env DOORBUSTER_STATE_DIR)."),
    ] = None,
) -> None:
    if state_dir is not None:
        ctx.state_dir = state_dir


# In the order `doorbuster --help` lists them.
for command in (
    stack.up,
    stack.status,
    stack.down,
    run.run,
    run.report,
    run.judge,
    compare.compare,
    sweep.sweep,
    catalogue.dashboards,
    catalogue.scenarios,
    run.smoke,
):
    app.command()(command)
toxic_app.command("add")(faults.toxic_add)
toxic_app.command("list")(faults.toxic_list)
toxic_app.command("remove")(faults.toxic_remove)
toxic_app.command("reset")(faults.toxic_reset)
proxy_app.command("disable")(faults.proxy_disable)
proxy_app.command("enable")(faults.proxy_enable)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the one place that turns errors into messages and exit codes."""
    try:
        # Typer's own standalone mode reports usage errors (exit 2) in its usual form; our
        # errors pass through it untouched and are reported here.
        app(args=argv, prog_name="doorbuster")
    except DoorbusterError as exc:
        err.print(
            f"[bold red]{type(exc).__name__}[/]: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        return int(exc.exit_code)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        err.print(str(exc.code), soft_wrap=True)
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
