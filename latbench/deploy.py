"""Deploy a latbench agent to a Linux host over SSH, and upgrade it in place.

What ``deploy`` does, each step idempotent: verify the host key (never auto-accepted, as for remote runners),
check the host's Python (3.10+ with ``venv``), build the latbench wheel here (``pip wheel --no-deps``) and copy
it there, create a venv (kept across deployments), install the wheel and the agent extras for the runtimes,
write the collector URL and enrollment token (and the path of the collector's CA certificate, copied there 0600)
to a 0600 env file, then run ``latbench agent run`` as a systemd
user service, or under ``nohup`` where no systemd user manager runs, restarting the one already running. The
agent's state dir stays where it was, so a redeployed agent keeps its identity and its spool. Finally it waits
for the agent's enrollment, and with an admin token until the collector lists the agent on an online device.

Dependencies come from the host's package index by default. For a host without one, ``wheelhouse`` ships a
directory of wheels built here for the host's platform (``pip download --only-binary=:all: --platform ...``)
and installs with ``--no-index``; ``system_site_packages`` lets the venv use what the host's Python already has
(numpy or onnxruntime from the OS or the vendor, common on boards), and ``offline`` forbids the index. Where that
Python is itself a venv, ``venv --system-site-packages`` would only show its base interpreter's packages, so the
new venv also gets the host venv's own site-packages (a ``.pth`` file).

Layout on the host (``remote_dir``, default ``~/.local/share/latbench``): ``venv/``, ``agent/`` (the agent's
state dir), ``agent.env``, ``ca.pem`` (with ``ca_cert``), and for the nohup service ``agent.sh``, ``agent.pid``,
``agent.log``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import latbench
from latbench.agents.identity import CREDENTIALS_FILE
from latbench.agents.remote.device import RemoteDevice, quote
from latbench.agents.remote.ssh import SshDevice, SshTarget
from latbench.client import CollectorClient
from latbench.errors import CollectorError, LatbenchError, RemoteError
from latbench.progress import Progress, notify
from latbench.tls import CA_CERT_ENV, trusting

SERVICE = "latbench-agent"
RUNTIME_EXTRAS = {"onnxruntime": "onnx"}
"""The setup.cfg extra that brings each runtime's engine; other runtimes are assumed to name their own extra."""
MIN_PYTHON = (3, 10)


class DeployError(RemoteError):
    """A deployment step that failed on the host; the message says which and why."""


@dataclass(frozen=True)
class Deployment:
    """What was deployed where, and the agent the collector now knows."""

    host: str
    agent_name: str
    agent_id: str
    device_name: str
    service: str
    """``systemd`` or ``nohup``."""
    remote_dir: str
    upgraded: bool
    """Whether an earlier deployment was there (and was upgraded in place)."""
    pid: int | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DeploySpec:
    """What to deploy: the collector it serves, and how to install it on the host."""

    collector_url: str
    enrollment_token: str
    runtimes: list[str] = field(default_factory=lambda: ["onnxruntime"])
    python: str = "python3"
    remote_dir: str | None = None
    agent_name: str | None = None
    agent_args: list[str] = field(default_factory=list)
    wheel: Path | None = None
    wheelhouse: Path | None = None
    system_site_packages: bool = False
    offline: bool = False
    ca_cert: Path | None = None
    """The CA certificate that verifies an https:// collector (default: the host's system store); copied to the
    host as ``ca.pem``, 0600."""

    @property
    def extras(self) -> str:
        return ",".join(["agent", *dict.fromkeys(RUNTIME_EXTRAS.get(r, r) for r in self.runtimes)])


def build_wheel(out_dir: Path) -> Path:
    """latbench's wheel, built from the source tree this latbench runs from (copied, so the tree stays clean)."""
    root = Path(latbench.__file__).resolve().parent.parent
    if not (root / "setup.cfg").exists() or not (root / "pyproject.toml").exists():
        raise DeployError(f"latbench at {root} is not a source tree, so no wheel can be built; give --wheel FILE")
    with tempfile.TemporaryDirectory(prefix="latbench-src-") as tmp:
        src = Path(tmp)
        for name in ("pyproject.toml", "setup.cfg", "README.md", "LICENSE"):
            if (root / name).exists():
                shutil.copy2(root / name, src / name)
        shutil.copytree(root / "latbench", src / "latbench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                str(out_dir),
                str(src),
            ],
            capture_output=True,
            text=True,
        )
    wheels = sorted(out_dir.glob(f"latbench-{latbench.__version__}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise DeployError(f"building the latbench wheel failed: {done.stderr.strip()[-500:]}")
    return wheels[-1]


class _Host:
    """The deployment's view of the host: its paths, and one-line commands that must succeed."""

    def __init__(self, device: RemoteDevice, spec: DeploySpec) -> None:
        self.device = device
        home = self.run("echo $HOME", "finding the home directory").strip()
        self.base = (spec.remote_dir or f"{home}/.local/share/latbench").replace("~", home, 1)
        self.venv = f"{self.base}/venv"
        self.state = f"{self.base}/agent"

    def run(self, command: str, what: str, timeout_s: float = 600.0) -> str:
        try:
            return self.device.exec(command, timeout_s).check(what)
        except RemoteError as exc:
            raise DeployError(str(exc)) from None

    def write(self, path: str, text: str, mode: int) -> None:
        """Write ``path`` with ``mode``, staged in a directory of its own that only this user can enter (``mktemp
        -d``), so a secret is never readable by others on the host, not even while it is uploaded."""
        make = quote("mkdir", "-p", self.base) + " && " + quote("mktemp", "-d", f"{self.base}/.staging.XXXXXX")
        private = self.run(make, f"staging {path}").strip().splitlines()[-1]
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write(text)
        staged = f"{private}/{Path(path).name}"
        try:
            self.device.put(Path(f.name), staged)
            self.run(f"install -m {mode:o} {quote(staged, path)}", f"writing {path}")
        finally:
            Path(f.name).unlink()
            self.device.exec(quote("rm", "-rf", private))


def _check_python(host: _Host, python: str) -> None:
    probe = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"
    try:
        out = host.device.exec(quote(python, "-c", probe), 60)
    except RemoteError as exc:
        raise DeployError(str(exc)) from None
    if out.returncode != 0:
        if "ensurepip" in out.output or "venv" in out.output:
            raise DeployError(
                f"{python} on the host has no venv module: install it there (apt-get install python3-venv)"
            )
        raise DeployError(f"{python} does not run on the host: {out.output.strip()[-300:]}; give --python PATH")
    version = tuple(int(p) for p in out.output.strip().splitlines()[-1].split("."))
    if version < MIN_PYTHON:
        raise DeployError(f"{python} on the host is Python {out.output.strip()}; latbench needs 3.10 or newer")


def _site_dirs(host: _Host, python: str) -> list[str]:
    """``python``'s own site-packages where it is a venv (none otherwise: then the system ones are its own)."""
    probe = (
        "import sys, sysconfig; print(sys.prefix != sys.base_prefix); "
        "print(sysconfig.get_path('purelib')); print(sysconfig.get_path('platlib'))"
    )
    is_venv, *dirs = host.run(quote(python, "-c", probe), f"reading {python}'s site-packages").strip().splitlines()
    return list(dict.fromkeys(dirs)) if is_venv == "True" else []


def _see_host_venv(host: _Host, python: str) -> None:
    """Make the new venv see the packages of ``python``'s venv as well as those of its base interpreter.

    ``site.addsitedir`` rather than bare paths, so that the ``.pth`` files there (editable installs) apply too.
    """
    dirs = _site_dirs(host, python)
    if dirs:
        probe = "import sysconfig; print(sysconfig.get_path('purelib'))"
        site_packages = host.run(quote(f"{host.venv}/bin/python", "-c", probe), "reading the venv's site-packages")
        lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in dirs)
        host.write(f"{site_packages.strip()}/latbench-host-venv.pth", lines, 0o644)


def _install(host: _Host, spec: DeploySpec, wheel: Path) -> None:
    """Create the venv if needed and (re)install latbench with its agent extras."""
    if host.device.exec(quote("test", "-x", f"{host.venv}/bin/python")).returncode != 0:
        site = ["--system-site-packages"] if spec.system_site_packages else []
        host.run(quote(spec.python, "-m", "venv", *site, host.venv), "creating the venv")
        if spec.system_site_packages:
            _see_host_venv(host, spec.python)
    staged = host.device.path("wheels")
    host.run(quote("mkdir", "-p", staged), "staging the wheels")
    for file in [wheel, *(sorted(spec.wheelhouse.glob("*.whl")) if spec.wheelhouse else [])]:
        host.device.put(file, f"{staged}/{file.name}")
    pip = [f"{host.venv}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    index = ["--no-index"] if spec.offline or spec.wheelhouse else []
    host.run(quote(*pip, "--force-reinstall", "--no-deps", f"{staged}/{wheel.name}"), "installing latbench", 900)
    requirement = f"latbench[{spec.extras}]=={latbench.__version__}"
    host.run(quote(*pip, *index, "--find-links", staged, requirement), "installing the agent's dependencies", 1800)


def _agent_command(host: _Host, spec: DeploySpec, name: str) -> list[str]:
    runtimes = [a for r in spec.runtimes for a in ("--runtime", r)]
    return [f"{host.venv}/bin/latbench", "agent", "run", "--state-dir", host.state, "--name", name, *runtimes,
            *spec.agent_args]  # fmt: skip


def _systemd_available(host: _Host) -> bool:
    return host.device.exec("systemctl --user show-environment >/dev/null 2>&1").returncode == 0


def _start_systemd(host: _Host, command: list[str]) -> None:
    unit = (
        "[Unit]\nDescription=latbench measurement agent (deployed by latbench deploy)\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        f"[Service]\nType=exec\nEnvironmentFile={host.base}/agent.env\nExecStart={quote(*command)}\n"
        "KillSignal=SIGTERM\nKillMode=mixed\nTimeoutStopSec=30\nRestart=on-failure\nRestartSec=10\n\n"
        "[Install]\nWantedBy=default.target\n"
    )
    host.run('mkdir -p "$HOME/.config/systemd/user"', "creating the systemd user unit directory")
    home = host.run("echo $HOME", "finding the home directory").strip()
    host.write(f"{home}/.config/systemd/user/{SERVICE}.service", unit, 0o644)
    host.run(
        f"systemctl --user daemon-reload && systemctl --user enable {SERVICE} && systemctl --user restart {SERVICE}",
        "starting the systemd user service",
    )


def _stop_nohup(pid_file: str) -> str:
    """A shell command that stops the agent in ``pid_file`` (if that pid still is a latbench) and waits for it."""
    return (
        f"pid=$(cat {quote(pid_file)} 2>/dev/null); "
        'if [ -n "$pid" ] && grep -q latbench "/proc/$pid/cmdline" 2>/dev/null; then kill -TERM "$pid"; '
        'i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; fi; true'
    )


_RUN_WITH_ENV = (
    "import os, sys\n"
    "env = dict(line.split('=', 1) for line in open(sys.argv[1]).read().splitlines() if '=' in line)\n"
    "os.execve(sys.argv[2], sys.argv[2:], {**os.environ, **env})\n"
)
"""Run ``argv[2:]`` with the ``KEY=value`` lines of the file ``argv[1]`` added to the environment, read as they
are: a shell sourcing the file would run whatever shell syntax a value holds."""


def nohup_script(python: str, env_file: str, pid_file: str, command: list[str]) -> str:
    """The nohup service's script: it writes its pid (which the agent keeps: each step execs the next) and runs
    ``command`` with ``env_file``'s variables, passed by environment, never on a command line."""
    return (
        f"#!/bin/sh\n# written by latbench deploy; stop with: kill $(cat {pid_file})\n"
        f"echo $$ > {quote(pid_file)}\nexec {quote(python, '-c', _RUN_WITH_ENV, env_file, *command)}\n"
    )


def env_file(spec: DeploySpec, ca_cert: str | None = None) -> str:
    """The agent's ``agent.env`` (with ``ca_cert``, the path of the CA certificate on the host); a value that
    systemd's ``EnvironmentFile`` would read other than as written (whitespace, quotes, backslashes, ``$``,
    backticks) is refused."""
    values = [("collector URL", "LATBENCH_COLLECTOR", spec.collector_url),
              ("enrollment token", "LATBENCH_TOKEN", spec.enrollment_token)]  # fmt: skip
    if ca_cert is not None:
        values.append(("CA certificate path", CA_CERT_ENV, ca_cert))
    for what, _, value in values:
        if not value or _UNSAFE_ENV.search(value):
            shown = f" {value!r}" if what != "enrollment token" else ""
            raise DeployError(f"the {what}{shown} is empty or holds whitespace, a quote, '\\', '$' or '`'")
    return "".join(f"{name}={value}\n" for _, name, value in values)


_UNSAFE_ENV = re.compile(r"[\s'\"\\$`\x00-\x1f\x7f]")


def _start_nohup(host: _Host, command: list[str]) -> int:
    """Stop the agent an earlier deployment started (SIGTERM: it releases its leases), start the new one.

    The launcher script writes its own pid before it execs the agent, so the pid file names the agent whether or
    not ``setsid`` forked; the launch runs in a subshell so that the SSH session does not wait for the agent.
    """
    pid_file, log = f"{host.base}/agent.pid", f"{host.base}/agent.log"
    script = nohup_script(f"{host.venv}/bin/python", f"{host.base}/agent.env", pid_file, command)
    host.write(f"{host.base}/agent.sh", script, 0o700)
    host.run(_stop_nohup(pid_file) + f"; rm -f {quote(pid_file)}", "stopping the running agent", 60)
    launcher = "setsid nohup" if host.device.exec("command -v setsid").returncode == 0 else "nohup"
    start = (
        f"cd {quote(host.base)} && ({launcher} sh agent.sh >> {quote(log)} 2>&1 < /dev/null &); "
        f"i=0; while [ ! -s {quote(pid_file)} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
        f"cat {quote(pid_file)}"
    )
    return int(host.run(start, "starting the agent").strip().splitlines()[-1])


def _agent_alive(host: _Host, service: str, pid: int | None) -> bool:
    if service == "systemd":
        return host.device.exec(f"systemctl --user is-active --quiet {SERVICE}").returncode == 0
    return host.device.exec(f"kill -0 {pid}").returncode == 0


def _wait_enrolled(
    host: _Host, spec: DeploySpec, service: str, pid: int | None, admin_token: str | None, timeout_s: float
) -> tuple[str, str]:
    """The agent's id and device name once it has enrolled (and, with an admin token, the collector shows it)."""
    deadline = time.monotonic() + timeout_s
    credentials = f"{host.state}/agent.json"
    while True:
        if not _agent_alive(host, service, pid):
            log = host.device.exec(f"tail -n 5 {quote(host.base + '/agent.log')} 2>/dev/null").output.strip()
            raise DeployError(f"the agent exited right after starting: {log or 'see its log on the host'}")
        saved = host.device.exec(quote("cat", credentials))
        if saved.returncode == 0:
            data = json.loads(saved.output)
            if admin_token is None or _collector_lists(spec, admin_token, data["device_name"]):
                return str(data["agent_id"]), str(data["device_name"])
        if time.monotonic() > deadline:
            raise DeployError(f"the agent did not enroll within {timeout_s:.0f} s; see {host.base}/agent.log there")
        time.sleep(0.5)


def _read_ca(spec: DeploySpec) -> str | None:
    """The CA certificate to copy to the host, checked here first: a file that verifies nothing fails now."""
    if spec.ca_cert is None:
        return None
    trusting(spec.ca_cert)
    return spec.ca_cert.read_text()


def _collector_lists(spec: DeploySpec, admin_token: str, device_name: str) -> bool:
    ca_cert = str(spec.ca_cert) if spec.ca_cert else None
    try:
        with CollectorClient(spec.collector_url, admin_token, timeout_s=10, ca_cert=ca_cert) as client:
            return any(d.name == device_name and d.online for d in client.devices())
    except CollectorError:
        return False


def deploy(
    target: SshTarget,
    spec: DeploySpec,
    *,
    key_file: Path | None = None,
    known_hosts: Path | None = None,
    host_key_fingerprint: str | None = None,
    admin_token: str | None = None,
    timeout_s: float = 120.0,
    progress: Progress | None = None,
) -> Deployment:
    """Deploy (or upgrade in place) an agent on ``target`` serving ``spec.collector_url``; see the module doc."""
    env_file(spec)
    ca_pem = _read_ca(spec)
    notify(progress, "deploy", message=f"connecting to {target}")
    with SshDevice.open(
        target, key_file=key_file, known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint
    ) as device:
        host = _Host(device, spec)
        _check_python(host, spec.python)
        # an upgrade replaces an agent that enrolled from here, not a venv a failed first deploy left behind
        upgraded = device.exec(quote("test", "-f", f"{host.state}/{CREDENTIALS_FILE}")).returncode == 0
        with tempfile.TemporaryDirectory(prefix="latbench-wheel-") as tmp:
            if spec.wheel is None:
                notify(progress, "deploy", message="building the latbench wheel")
            wheel = spec.wheel or build_wheel(Path(tmp))
            notify(progress, "deploy", message=f"installing {wheel.name} into {host.venv}")
            _install(host, spec, wheel)
        host.run(quote("mkdir", "-p", host.state) + f" && chmod 700 {quote(host.state)}", "creating the state dir")
        ca_path = None
        if ca_pem is not None:
            ca_path = f"{host.base}/ca.pem"
            host.write(ca_path, ca_pem, 0o600)
        host.write(f"{host.base}/agent.env", env_file(spec, ca_path), 0o600)
        name = spec.agent_name or host.run("uname -n", "reading the host name").strip()
        command = _agent_command(host, spec, name)
        service = "systemd" if _systemd_available(host) else "nohup"
        notify(progress, "deploy", message=f"{'restarting' if upgraded else 'starting'} the agent ({service})")
        pid = None
        if service == "systemd":
            _start_systemd(host, command)
        else:
            pid = _start_nohup(host, command)
        notify(progress, "deploy", message="waiting for the agent to enroll")
        agent_id, device_name = _wait_enrolled(host, spec, service, pid, admin_token, timeout_s)
    return Deployment(str(target), name, agent_id, device_name, service, host.base, upgraded, pid)


def stop(
    target: SshTarget,
    *,
    remote_dir: str | None = None,
    key_file: Path | None = None,
    known_hosts: Path | None = None,
) -> None:
    """Stop a deployed agent (SIGTERM: it releases its leases and pushes its spool); the deployment stays."""
    with SshDevice.open(target, key_file=key_file, known_hosts=known_hosts) as device:
        host = _Host(device, DeploySpec("", "", remote_dir=remote_dir))
        if _systemd_available(host):
            host.run(f"systemctl --user stop {SERVICE}", "stopping the agent")
            return
        if device.exec(quote("test", "-f", f"{host.base}/agent.pid")).returncode != 0:
            raise LatbenchError(f"no agent was deployed in {host.base} on {target}")
        host.run(_stop_nohup(f"{host.base}/agent.pid"), "stopping the agent", 60)
