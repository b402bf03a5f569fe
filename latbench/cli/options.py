"""The options that several commands share, declared once so that each has one name, short flag, environment
variable and meaning everywhere.

Short flags: ``-s`` space, ``-n`` samples, ``-a`` arch, ``-m`` model, ``-d`` device, ``-r`` runtime, ``-t`` threads,
``-o`` out. ``--json`` is always a flag that prints the structured result on stdout (files are ``--out``).
Secrets (``--token``) come from the environment rather than the command line, where other users can read them
(typed there, they still work, with a warning: ``typed_secret``).
Options whose help depends on the command are factories (``out("Model file (.pt).")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from latbench.cli.console import err, styled

COLLECTOR_ENV = "LATBENCH_COLLECTOR"
ADMIN_TOKEN_ENV = "LATBENCH_ADMIN_TOKEN"
ENROLLMENT_TOKEN_ENV = "LATBENCH_TOKEN"
CA_CERT_ENV = "LATBENCH_CA_CERT"

Space = Annotated[str, typer.Option("--space", "-s", help="Search space (see latbench spaces list).")]
Seed = Annotated[int, typer.Option("--seed", help="Seed: the same seed gives the same result.")]
Threads = Annotated[int, typer.Option("--threads", "-t", min=1, help="Intra-op threads (1 is the repeatable default).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
IncludeUnstable = Annotated[
    bool, typer.Option("--include-unstable", help="Use results the stability checks gave up on, too.")
]


def _collector() -> Any:
    return typer.Option("--collector", envvar=COLLECTOR_ENV, show_envvar=True, help="Collector URL.")


Collector = Annotated[str | None, _collector()]
RequiredCollector = Annotated[str, _collector()]
CaCert = Annotated[
    Path | None,
    typer.Option(
        "--ca-cert",
        envvar=CA_CERT_ENV,
        show_envvar=True,
        help="CA certificate (PEM) that verifies an https:// collector (default: the system's store).",
    ),
]


def typed_secret(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Warn (and go on) when a token was typed on the command line: every user of the machine sees it in ``ps``,
    and the shell keeps it in its history; its environment variable keeps it out of both."""
    source = ctx.get_parameter_source(param.name) if param.name else None
    if value and source is not None and source.name == "COMMANDLINE":  # typer's own click: compared by name
        name = "/".join(param.opts)
        hint = f"; set {param.envvar} instead" if isinstance(param.envvar, str) else ""
        err.print(styled("warning:", "yellow", f"{name} on the command line is visible to other users (ps){hint}"))
    return value


AdminToken = Annotated[
    str | None,
    typer.Option("--token", envvar=ADMIN_TOKEN_ENV, show_envvar=True, callback=typed_secret, help="Admin token."),
]


def out(help: str) -> Any:
    """``--out``/``-o``: the file or directory a command writes."""
    return typer.Option("--out", "-o", help=help)


def samples(help: str, min: int | None = 1) -> Any:
    """``--samples``/``-n``: how many architectures."""
    return typer.Option("--samples", "-n", min=min, help=help)


def arch(help: str = "An architecture (repeatable).") -> Any:
    """``--arch``/``-a``: an architecture string."""
    return typer.Option("--arch", "-a", help=help)


def model(help: str) -> Any:
    """``--model``/``-m``: a model file (a predictor model, or a network to measure)."""
    return typer.Option("--model", "-m", help=help)


def device(help: str) -> Any:
    """``--device``/``-d``: a device name."""
    return typer.Option("--device", "-d", help=help)


def runtime(help: str) -> Any:
    """``--runtime``/``-r``: an inference runtime."""
    return typer.Option("--runtime", "-r", help=help)


def enrollment_token(help: str = "Enrollment token for the agent.") -> Any:
    """``--token`` of the commands that enroll an agent (``agent run``, ``deploy``): the enrollment token."""
    return typer.Option("--token", envvar=ENROLLMENT_TOKEN_ENV, show_envvar=True, callback=typed_secret, help=help)
