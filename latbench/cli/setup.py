"""``latbench setup``: set up, ahead of need, what latbench would otherwise set up on first use."""

from __future__ import annotations

import os

import typer

from latbench.cli.console import err, out

setup_app = typer.Typer(help="Set up ahead of need what latbench otherwise sets up on first use.", no_args_is_help=True)


@setup_app.command("converter")
def converter_command() -> None:
    """Set up the LiteRT converter's own environment ($LATBENCH_HOME/convert-venv); prints its python."""
    from latbench.convert.environment import PYTHON_ENV, setup_converter

    python = setup_converter()
    if os.environ.get(PYTHON_ENV):
        err.print(f"note: conversions use {PYTHON_ENV}={os.environ[PYTHON_ENV]}, not this environment", highlight=False)
    out.print(str(python))
