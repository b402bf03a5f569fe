"""The LiteRT converter's own environment: a venv with ``litert-torch``, set up once, on request or on first need.

``litert-torch`` pins ``xdsl``, which pins ``typing-extensions<4.13`` and so would downgrade pydantic below what
the collector runs on: it lives in ``$LATBENCH_HOME/convert-venv``, a venv that sees this environment's packages
(``--system-site-packages``; when this environment is itself a venv, which that flag skips, a ``.pth`` file adds
its site directories too) and installs ``requirements.txt`` (shared with ``scripts/convert-env.sh``) over them,
with torch pinned to this environment's torch so that pip finds it installed instead of fetching another build.

The venv counts as set up once its stamp file is written, after pip succeeded; a set-up that fails removes the
venv, so nothing half-made is ever used, and a lock file makes a second process wait for the first one's.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from latbench.errors import ConverterUnavailable
from latbench.paths import latbench_home

PYTHON_ENV = "LATBENCH_CONVERT_PYTHON"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
STAMP = ".latbench-ready"
"""Written into the venv (by ``scripts/convert-env.sh`` too) once pip has installed everything."""
SETUP_S = 150
"""About how long a set-up takes when torch is already installed: pip unpacks ~950 MB (JAX, litert-torch and
their dependencies); 146 s on a busy 2-vCPU VM, of which 30 s of CPU."""
NOT_SET_UP = "not set up: run `latbench setup converter` (done automatically on first use)"
TAIL_LINES = 12
"""Lines of a failed command's output that its error shows."""


def venv_dir() -> Path:
    return latbench_home() / "convert-venv"


def requirements() -> list[str]:
    """What pip installs into the venv: ``requirements.txt``, torch pinned to this environment's where it has one."""
    lines = (line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    pins = [line for line in lines if line]
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return pins
    return [f"torch=={torch}" if re.split(r"[\s=<>!~;\[]", pin)[0].lower() == "torch" else pin for pin in pins]


def ready_python() -> str | None:
    """The interpreter conversions run in: ``$LATBENCH_CONVERT_PYTHON``, else the converter venv once set up,
    else this interpreter if it has ``litert-torch`` itself; ``None`` when there is none yet."""
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    venv = venv_dir()
    if (venv / STAMP).is_file():
        return str(venv / "bin" / "python")
    if importlib.util.find_spec("litert_torch") is not None:
        return sys.executable
    return None


def converter_status() -> str:
    """``ready (PYTHON)``, or what is missing and how to get it, for ``latbench runtimes``."""
    python = ready_python()
    if python is None:
        return NOT_SET_UP
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('litert_torch') is None)"
    try:
        works = subprocess.run([python, "-c", check], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        works = False
    if works:
        return f"ready ({python})"
    if os.environ.get(PYTHON_ENV):
        return f"not usable: {PYTHON_ENV}={python} has no litert-torch"
    return f"not usable: {python} has no litert-torch; remove {venv_dir()} and run `latbench setup converter`"


def ensure_converter() -> str:
    """The interpreter conversions run in (``ready_python``), setting up the venv first if there is none."""
    return ready_python() or str(setup_converter())


def setup_converter() -> Path:
    """Set up the converter venv unless it is set up already; its python. ``ConverterUnavailable`` when a step
    fails (no network, no package index), with the end of that step's output."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    with _lock(venv.with_name(venv.name + ".lock")):
        if (venv / STAMP).is_file():
            return python
        pins = requirements()
        _say(f"setting up the LiteRT converter (one time, about {SETUP_S} s) in {venv} ...")
        start = time.monotonic()
        try:
            _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], "python -m venv", venv)
            if sys.prefix != sys.base_prefix:
                _see_this_venv(venv)
            _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *pins], "pip install", venv)
            (venv / STAMP).write_text("".join(f"{pin}\n" for pin in pins))
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
        _say(f"the LiteRT converter is ready ({time.monotonic() - start:.0f} s): {python}")
    return python


def _see_this_venv(venv: Path) -> None:
    """Make the converter venv see this venv's packages after its own (``--system-site-packages`` only adds the
    base interpreter's): ``site.addsitedir`` also runs their ``.pth`` files, such as editable installs'."""
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    lines = (f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages())
    Path(purelib, "latbench-main-environment.pth").write_text("".join(lines))


def _run(command: list[str], step: str, venv: Path) -> None:
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        tail = [line for line in done.stdout.splitlines() if line.strip()][-TAIL_LINES:]
        raise ConverterUnavailable(
            f"cannot set up the LiteRT converter in {venv}: {step} failed (exit {done.returncode}):\n"
            + "".join(f"  {line}\n" for line in tail)
            + f"once that is fixed (network, package index), run `latbench setup converter`, or set {PYTHON_ENV} "
            "to a python that has litert-torch"
        )


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, saying so when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"waiting for another process setting up the LiteRT converter ({path}) ...")
            fcntl.flock(file, fcntl.LOCK_EX)
        yield


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
