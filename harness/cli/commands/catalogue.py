"""``doorbuster dashboards`` and ``doorbuster scenarios``: what the checkout ships, generated
and listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli.context import out
from harness.config import systems
from harness.config.scenarios import load_scenario
from model.errors import ConfigError

__all__ = ["dashboards", "scenarios"]


def dashboards(
    system: Annotated[
        str | None,
        typer.Option(help="Instead: the Grafana dashboard of this system (a name under systems/ or a path)."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="With --system: write it here (default: print it).")
    ] = None,
) -> None:
    """Regenerate grafana/ (dashboards, provisioning) and the docker-compose files; or, with
    --system, write the dashboard of a system of your own (the panels it has data for)."""
    from harness.stack.generated import system_dashboard, write_generated

    if system is not None:
        spec = systems.load_system(system)
        if spec.builtin is not None:
            raise ConfigError(f"--system {system}: the checkout's dashboards are grafana/dashboards/*.json")
        text = json.dumps(system_dashboard(spec), indent=2, sort_keys=True) + "\n"
        if out_file is None:
            out.print(text, end="", markup=False, highlight=False)
            return
        try:
            out_file.write_text(text)
        except OSError as exc:
            raise ConfigError(f"--out {out_file}: {exc.strerror}") from None
        out.print(f"wrote {out_file}")
        return
    if out_file is not None:
        raise ConfigError("--out goes with --system")
    written = write_generated()
    for path in written:
        out.print(f"wrote {path}")
    if not written:
        out.print("everything was up to date")


def scenarios() -> None:
    """List the shipped scenarios."""
    from harness.config.scenarios import shipped_scenarios

    for name in shipped_scenarios():
        scenario, _ = load_scenario(name)
        first = scenario.description.split(". ")[0].strip()
        out.print(f"[bold]{name}[/] ({scenario.duration_s:.0f}s): {escape(first)}")
