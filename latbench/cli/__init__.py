"""The ``latbench`` command: a thin layer over the Python API, with one error-to-exit-code mapping.

Exit codes: 0 ok, 1 failure (a ``LatbenchError`` or anything unexpected), 2 usage error, 130 interrupted.
Results go to stdout; progress and messages to stderr.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
import typer.main
from rich.console import Console

from latbench import __version__
from latbench.cli.agent import agent_app
from latbench.cli.campaign import campaign_app
from latbench.cli.collector import collector_app
from latbench.cli.console import err, styled
from latbench.cli.dataset import dataset_app
from latbench.cli.deploy import deploy_command
from latbench.cli.env import env_command
from latbench.cli.fleet import agents_app, devices_app
from latbench.cli.measure import measure_command
from latbench.cli.predictor import predict_command, predictor_app
from latbench.cli.quickstart import quickstart_command
from latbench.cli.results import results_app, show_command
from latbench.cli.runtimes import runtimes_command
from latbench.cli.search import search_command
from latbench.cli.setup import setup_app
from latbench.cli.spaces import spaces_app
from latbench.cli.tasks import tasks_app
from latbench.cli.tokens import token_app
from latbench.errors import LatbenchError

app = typer.Typer(
    name="latbench",
    help="Measure neural-network latency on real hardware and learn latency predictors from it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("quickstart")(quickstart_command)
app.command("measure")(measure_command)
app.command("env")(env_command)
app.command("runtimes")(runtimes_command)
app.add_typer(spaces_app, name="spaces")
app.add_typer(token_app, name="token")
app.add_typer(agents_app, name="agents")
app.add_typer(campaign_app, name="campaign")
results_app.command("show")(show_command)
app.add_typer(results_app, name="results")
app.add_typer(devices_app, name="devices")
app.add_typer(collector_app, name="collector")
app.add_typer(agent_app, name="agent")
app.command("deploy")(deploy_command)
app.add_typer(dataset_app, name="dataset")
app.add_typer(tasks_app, name="tasks")
app.add_typer(predictor_app, name="predictor")
app.command("predict")(predict_command)
app.command("search")(search_command)
app.add_typer(setup_app, name="setup")


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Measure neural-network latency on real hardware and learn latency predictors from it."""


RICH_HELP_COLUMNS = 100
"""The width rich's option tables need: narrower (an 80-column terminal, or help piped to a pager, which rich
takes as 80), they cut option names, defaults and env vars to "--host-key-fingerpr…"; click's plain help wraps
them instead."""


def _plain_help(command: Any) -> None:
    """Give ``command`` and every subcommand click's plain help (typer's ``rich_markup_mode=None``), with the
    ``\\[`` that keeps a bracket from being read as rich markup shown as the bracket it is. (Typer carries its
    own click, so its commands are reached by attribute, not by click's types.)"""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for item in [command, *getattr(command, "params", [])]:
        text = getattr(item, "help", None)
        if isinstance(text, str):
            item.help = text.replace("\\[", "[")
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def main() -> None:
    try:
        command = typer.main.get_command(app)
        if Console().width < RICH_HELP_COLUMNS:
            _plain_help(command)
        command()
    except LatbenchError as exc:
        err.print(styled("error:", "red", str(exc)), highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("LATBENCH_DEBUG"):
            raise
        err.print(
            styled("internal error:", "red", f"{type(exc).__name__}: {exc} (set LATBENCH_DEBUG=1 for a traceback)"),
            highlight=False,
        )
        sys.exit(1)
