"""SSH to a Linux device with paramiko, host keys verified: a known_hosts file, or a fingerprint the user pins.

A host key is never accepted just because it was offered. An unknown key is refused (the message shows its
fingerprint, to check on the device and pin), a key that differs from the known one is refused louder. Pinning
(``host_key_fingerprint``) accepts exactly the key with that SHA256 fingerprint and writes it to the known_hosts
file, so later connections, the agent's included, verify against the file.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import getpass
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from latbench.agents.remote.device import Completed, ConnectionLost, RemoteDevice, new_workdir
from latbench.agents.remote.session import STOP_WAIT_S, Session
from latbench.errors import HostKeyRejected, HostUnreachable, MissingDependency, RemoteError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str, port: int | None = None) -> SshTarget:
        """``user@host``, ``host`` or ``ssh://user@host:port`` (an explicit ``port`` wins); user defaults to ours."""
        parts = urlsplit(text if text.startswith("ssh://") else f"ssh://{text}")
        try:
            url_port = parts.port
        except ValueError:
            url_port = -1
        if not parts.hostname or url_port == -1 or parts.path not in ("", "/"):
            raise RemoteError(f"not an SSH target: {text!r}; expected user@host or ssh://user@host:port")
        return cls(parts.username or getpass.getuser(), parts.hostname, port or url_port or 22)

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts files name it."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


def fingerprint(key: Any) -> str:
    """OpenSSH's SHA256 fingerprint of a public key (what ``ssh-keygen -lf`` prints)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _paramiko() -> Any:
    try:
        import paramiko
    except ImportError:
        raise MissingDependency("paramiko", "remote", "SSH to a device") from None
    return paramiko


def connect(
    target: SshTarget,
    *,
    key_file: Path | None = None,
    known_hosts: Path | None = None,
    host_key_fingerprint: str | None = None,
) -> Any:
    """An authenticated ``paramiko.SSHClient`` to ``target`` whose host key was verified as the module says."""
    paramiko = _paramiko()
    known = (known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
    client = paramiko.SSHClient()
    if known.exists():
        client.load_host_keys(str(known))
    client.set_missing_host_key_policy(_Pin(host_key_fingerprint, known) if host_key_fingerprint else _Refuse(known))
    try:
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            key_filename=str(key_file.expanduser()) if key_file else None,
            look_for_keys=key_file is None,
            allow_agent=key_file is None,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S,
            auth_timeout=CONNECT_TIMEOUT_S,
        )
    except HostKeyRejected:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyRejected(
            f"the host key of {target.known_hosts_name} does not match {known}: it offered "
            f"{exc.key.get_name()} {fingerprint(exc.key)}, the file has {fingerprint(exc.expected_key)}; refusing "
            f"to connect. If the device was reinstalled, remove the old key (ssh-keygen -R "
            f"'{target.known_hosts_name}' -f {known}) and pin the new one"
        ) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise RemoteError(
            f"{target}: authentication failed ({exc}); check --key and the device's authorized_keys"
        ) from None
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        if "No authentication methods available" in str(exc):
            raise RemoteError(
                f"{target}: no key to log in with: give --key FILE (a private key whose public half the device's "
                "authorized_keys lists), or add one to ssh-agent"
            ) from None
        why = re.sub(r"^\[Errno None\] ", "", str(exc)) or type(exc).__name__  # paramiko's own "errno"
        raise HostUnreachable(f"cannot reach {target}: {why}") from None
    return client


class _Refuse:
    """Refuses a host that the known_hosts file does not list (or a missing file), showing the key's fingerprint to
    verify and pin. ``hostname`` is as known_hosts names it (``[host]:port`` off port 22)."""

    def __init__(self, known: Path) -> None:
        self.known = known

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        offered = f"{key.get_name()} {fingerprint(key)}"
        why = (
            f"is not in {self.known}"
            if self.known.exists()
            else f"cannot be verified: there is no known_hosts file at {self.known} (give --known-hosts FILE)"
        )
        raise HostKeyRejected(
            f"the host key of {hostname} ({offered}) {why}; refusing to connect. Check that fingerprint on the "
            f"device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then pin it with --host-key-fingerprint "
            f"{fingerprint(key)}"
        )


class _Pin:
    """Accepts only the key with the pinned fingerprint, and records it in the known_hosts file."""

    def __init__(self, expected: str, known: Path) -> None:
        self.expected = expected if expected.startswith("SHA256:") else f"SHA256:{expected}"
        self.known = known

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        got = fingerprint(key)
        if got != self.expected:
            raise HostKeyRejected(
                f"the host key of {hostname} is {key.get_name()} {got}, not the pinned {self.expected}; "
                "refusing to connect"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.known.open("a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        self.known.chmod(0o600)


class SshDevice(RemoteDevice):
    """A Linux device over SSH: SFTP for files, one exec channel per command. ``dial`` makes an authenticated,
    host-key-verified client (``connect``); it is called again, unchanged, to reconnect."""

    def __init__(self, target: SshTarget, dial: Callable[[], Any], workdir: str | None = None) -> None:
        self._dial = dial
        self.client = dial()
        self.target = str(target)
        self.workdir = workdir or new_workdir("/tmp")
        self._sftp: Any = None
        self._make_workdir()

    @classmethod
    def open(
        cls,
        target: SshTarget,
        *,
        key_file: Path | None = None,
        known_hosts: Path | None = None,
        host_key_fingerprint: str | None = None,
        workdir: str | None = None,
    ) -> SshDevice:
        dial = functools.partial(
            connect, target, key_file=key_file, known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint
        )
        return cls(target, dial, workdir)

    def _lost(self, wait_s: float = 0.0) -> bool:
        """Whether the connection is gone. The transport closes its channels before it marks itself inactive, so
        a caller that saw a channel end waits ``wait_s`` for a dying transport to finish."""
        transport = self.client.get_transport()
        if transport is not None and transport.is_active() and wait_s:
            transport.join(wait_s)
        return transport is None or not transport.is_active()

    def _failed(self, what: str, exc: BaseException) -> RemoteError:
        """``ConnectionLost`` if the connection went with ``exc``, else the device's own failure."""
        if self._lost():
            return ConnectionLost(f"{self.target}: the connection was lost while {what}: {exc or type(exc).__name__}")
        return RemoteError(f"{self.target}: {what} failed: {exc}")

    def _check(self) -> None:
        if self._lost(wait_s=0.5):
            raise ConnectionLost(f"{self.target}: the connection was lost")

    def _files(self) -> Any:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def _forget_files(self) -> None:
        """Drop the SFTP session after a failure, so the next transfer opens a new one rather than fail again."""
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            with contextlib.suppress(*_errors()):
                sftp.close()

    def put(self, local: Path, remote: str) -> None:
        try:
            self._files().put(str(local), remote)
        except _errors() as exc:
            self._forget_files()
            raise self._failed(f"uploading {local.name} to {remote}", exc) from None

    def remove(self, *remote: str) -> None:
        """Over SFTP: no shell to start on the device."""
        try:
            for path in remote:
                with contextlib.suppress(FileNotFoundError):
                    self._files().remove(path)
        except _errors() as exc:
            self._forget_files()
            raise self._failed(f"removing {', '.join(remote)}", exc) from None

    def exec(self, command: str, timeout_s: float = 600.0) -> Completed:
        try:
            channel = self.client.get_transport().open_session()
            channel.set_combine_stderr(True)
            channel.settimeout(timeout_s)
            channel.exec_command(command)
            chunks = []
            while data := channel.recv(1 << 16):
                chunks.append(data)
            returncode = channel.recv_exit_status()
            channel.close()
        except TimeoutError:
            if self._lost():
                raise ConnectionLost(f"{self.target}: the connection was lost while running a command") from None
            raise RemoteError(f"{self.target}: no answer within {timeout_s:.0f} s from: {command}") from None
        except _errors() as exc:
            raise self._failed("running a command", exc) from None
        if returncode == -1:  # no exit status: the command was killed, or the connection dropped under it
            self._check()
        return Completed(command, returncode, b"".join(chunks).decode(errors="replace"))

    def spawn(self, command: str) -> Session:
        try:
            channel = self.client.get_transport().open_session()
            channel.set_combine_stderr(True)
            channel.exec_command(command)
        except _errors() as exc:
            raise self._failed(f"starting {command.splitlines()[0]}", exc) from None

        def close() -> None:  # the command saw its input end: the stub exits at once; a tool gets a moment
            channel.status_event.wait(STOP_WAIT_S)
            with contextlib.suppress(*_errors()):
                channel.close()

        # Unbuffered input: a line that cannot be sent is not kept in a buffer that paramiko would try to send again
        # when the file is collected (at exit, printing a traceback for a connection long gone).
        stdin = channel.makefile_stdin("wb", 0)
        return Session(self.target, stdin, channel.makefile("rb"), close, self._check)

    def _connect(self) -> None:
        self.client = self._dial()

    def _disconnect(self) -> None:
        self._forget_files()
        with contextlib.suppress(*_errors()):
            self.client.close()


def _errors() -> tuple[type[BaseException], ...]:
    """What paramiko raises when a channel or the connection fails (``AttributeError``: the transport is gone)."""
    return (OSError, EOFError, AttributeError, _paramiko().SSHException)
