"""SSH to a Linux device with paramiko, host keys verified: a known_hosts file, or a fingerprint the user pins.

A host key is never accepted just because it was offered. An unknown key is refused (the message shows its
fingerprint, to check on the device and pin), a key that differs from the known one is refused louder. Pinning
(``host_key_fingerprint``) accepts exactly the key with that SHA256 fingerprint and writes it to the known_hosts
file, so later connections, the agent's included, verify against the file.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from latbench.agents.remote.device import Completed, RemoteDevice
from latbench.agents.remote.session import Session
from latbench.errors import HostKeyRejected, MissingDependency, RemoteError

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
        raise RemoteError(f"cannot reach {target}: {exc}") from None
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
    """A Linux device over SSH: SFTP for files, one exec channel per command."""

    def __init__(self, client: Any, target: SshTarget, workdir: str | None = None) -> None:
        self.client = client
        self.target = str(target)
        self.workdir = workdir or f"/tmp/latbench-{uuid.uuid4().hex[:12]}"
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
        client = connect(target, key_file=key_file, known_hosts=known_hosts, host_key_fingerprint=host_key_fingerprint)
        return cls(client, target, workdir)

    def _files(self) -> Any:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def put(self, local: Path, remote: str) -> None:
        try:
            self._files().put(str(local), remote)
        except OSError as exc:
            raise RemoteError(f"uploading {local.name} to {self.target}:{remote} failed: {exc}") from None

    def remove(self, *remote: str) -> None:
        """Over SFTP: no shell to start on the device."""
        try:
            for path in remote:
                with contextlib.suppress(FileNotFoundError):
                    self._files().remove(path)
        except OSError as exc:
            raise RemoteError(f"removing {', '.join(remote)} on {self.target} failed: {exc}") from None

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
            raise RemoteError(f"{self.target}: no answer within {timeout_s:.0f} s from: {command}") from None
        except (OSError, EOFError, AttributeError) as exc:  # AttributeError: the transport is gone
            raise RemoteError(f"{self.target}: the connection failed while running a command: {exc}") from None
        return Completed(command, returncode, b"".join(chunks).decode(errors="replace"))

    def spawn(self, command: str) -> Session:
        try:
            channel = self.client.get_transport().open_session()
            channel.set_combine_stderr(True)
            channel.exec_command(command)
        except (OSError, AttributeError) as exc:
            raise RemoteError(f"{self.target}: cannot start {command}: {exc}") from None

        def close() -> None:  # the command saw its input end: give it a moment to exit
            channel.status_event.wait(10)
            channel.close()

        return Session(self.target, channel.makefile_stdin("wb"), channel.makefile("rb"), close)

    def _disconnect(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()
