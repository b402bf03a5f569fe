"""The options that several commands share, declared once so that each has one name, short flag, environment
variable and meaning everywhere.

Short flags: ``-s`` space, ``-n`` samples, ``-a`` arch, ``-m`` model, ``-d`` device, ``-r`` runtime, ``-t`` threads,
``-o`` out. ``--json`` is always a flag that prints the structured result on stdout (files are ``--out``).
Secrets (``--token``) come from the environment rather than the command line, where other users can read them
(typed there, they still work, with a warning: ``typed_secret``).
Options whose help depends on the command are factories (``out("Model file (.pt).")``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from latbench.agents.measure import TimingSettings
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


def one_of(choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """An option callback that refuses a value outside ``choices`` (a registry of the code, never a copy of it) as
    a usage error, exit 2, while the command line is parsed: before any model is loaded or trained."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of: {', '.join(choices)}")
        return value

    return check


def _sha256_pin(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}=?", value):
        raise typer.BadParameter(
            f"{value!r} is not a host key fingerprint: give it as ssh-keygen -lf prints it, SHA256: and 43 characters"
        )
    return value


def host_key_fingerprint(help: str) -> Any:
    """``--host-key-fingerprint``: a malformed pin is a usage error, not a key that does not match."""
    return typer.Option(None, "--host-key-fingerprint", help=help, callback=_sha256_pin)


# --- a remote device to measure on: ``agent run`` and ``measure`` alike (``latbench.agents.remote``) --------------

Remote = Annotated[
    str | None,
    typer.Option("--remote", help="Measure on this device instead of here: ssh://user@host[:port] or adb://[SERIAL]."),
]
RemoteTool = Annotated[
    str,
    typer.Option(
        "--remote-tool", help="Tool on the device: stub (latbench's loop), benchmark_model, onnxruntime_perf_test."
    ),
]
RemoteCommand = Annotated[
    str | None,
    typer.Option("--remote-command", help="The tool's path on the device (for the stub: its Python; default python3)."),
]
CpuMask = Annotated[
    str | None, typer.Option("--cpu-mask", help="Pin the tool to these device CPUs (taskset hex mask).")
]
SshKey = Annotated[Path | None, typer.Option("--key", help="SSH private key for --remote.")]
KnownHosts = Annotated[
    Path | None,
    typer.Option(
        "--known-hosts", help="known_hosts file that verifies the device's host key (default ~/.ssh/known_hosts)."
    ),
]
HostKeyFingerprint = Annotated[
    str | None,
    typer.Option(
        "--host-key-fingerprint",
        help="Pin the device's host key by SHA256 fingerprint (saved to --known-hosts).",
        callback=_sha256_pin,
    ),
]
DeviceWait = Annotated[
    float,
    typer.Option(
        "--device-wait", min=0.0, help="Seconds to keep trying to reach a --remote device at start (booting)."
    ),
]
DEVICE_WAIT_S = 300.0
"""The default of ``--device-wait``: a board that powers up with the host is given five minutes to boot."""


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


# --- how each model is timed: ``measure`` and ``campaign create`` alike (``latbench.agents.measure``) -------------

TIMING = TimingSettings()
"""The defaults of the timing options below: those of the measurement loop itself."""
Classes = Annotated[
    int | None, typer.Option("--classes", min=1, help="Output classes (default: the space's; nb201 10, fbnet 100).")
]
MinRuns = Annotated[int, typer.Option("--min-runs", min=1, help="Timed runs, at least.")]
MinTime = Annotated[float, typer.Option("--min-time", min=0.0, help="Seconds of timed runs, at least.")]
MaxTime = Annotated[float, typer.Option("--max-time", min=0.001, help="Seconds of timed runs, at most.")]
WarmupRuns = Annotated[int, typer.Option("--warmup-runs", min=0, help="Warm-up runs, at least.")]
WarmupTime = Annotated[float, typer.Option("--warmup-time", min=0.0, help="Seconds of warm-up, at least.")]
CvThreshold = Annotated[
    float,
    typer.Option(
        "--cv-threshold",
        min=0.0001,
        help=(
            "Re-measure when the runs' spread is above this: the interquartile range over 1.349 x the median "
            "(the CV of normal runs, blind to a few preempted ones)."
        ),
    ),
]
DriftTolerance = Annotated[
    float,
    typer.Option("--drift-tolerance", min=0.0001, help="Re-measure when the reference model is off by more than this."),
]
Attempts = Annotated[int, typer.Option("--attempts", min=1, help="Measurements per architecture while unstable.")]
Profile = Annotated[
    bool,
    typer.Option("--profile", help="After timing each model, profile it per operator (see latbench results show)."),
]
ProfileRuns = Annotated[int, typer.Option("--profile-runs", min=1, help="Runs --profile records.")]


def timing(
    *,
    warmup_runs: int,
    warmup_time: float,
    min_runs: int,
    min_time: float,
    max_time: float,
    cv_threshold: float,
    drift_tolerance: float,
    attempts: int,
    profile_runs: int,
) -> TimingSettings:
    """The timing options as the loop's settings; options that contradict each other (``--min-time`` above
    ``--max-time``) are a usage error, named, before anything is measured or sent."""
    if min_time > max_time:
        raise typer.BadParameter(f"--min-time {min_time:g} is above --max-time {max_time:g}: raise --max-time")
    try:
        return TimingSettings(
            warmup_runs=warmup_runs,
            warmup_time_s=warmup_time,
            min_runs=min_runs,
            min_time_s=min_time,
            max_time_s=max_time,
            cv_threshold=cv_threshold,
            drift_tolerance=drift_tolerance,
            max_attempts=attempts,
            profile_runs=profile_runs,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
