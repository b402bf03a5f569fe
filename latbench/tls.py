"""How latbench's clients (agents, the admin client and every command that talks to a collector) verify an HTTPS
collector: against a CA certificate given (``--ca-cert`` or ``$LATBENCH_CA_CERT``), else the system's store.

A certificate that does not verify is an ``UntrustedCollector``: never retried, since asking again cannot make
it verify, and said in one line with what to do.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from latbench.errors import LatbenchError, UntrustedCollector

CA_CERT_ENV = "LATBENCH_CA_CERT"


def verification(url: str, ca_cert: str | Path | None = None) -> ssl.SSLContext | bool:
    """What an ``httpx`` client of ``url`` verifies with: for HTTPS, a context trusting ``ca_cert`` (default
    ``$LATBENCH_CA_CERT``) or else the system's CA store; nothing to verify for plain HTTP."""
    path = ca_cert or os.environ.get(CA_CERT_ENV) or None
    if not url.startswith("https://"):
        return True
    return ssl.create_default_context() if path is None else trusting(path)


def trusting(ca_cert: str | Path) -> ssl.SSLContext:
    """A client context that trusts the CA certificate (PEM) ``ca_cert`` alone; a clear error if it cannot."""
    if not Path(ca_cert).is_file():
        raise LatbenchError(f"CA certificate {ca_cert} does not exist")
    try:
        return ssl.create_default_context(cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as exc:
        raise LatbenchError(f"cannot read CA certificate {ca_cert}: {exc}") from None


def untrusted(exc: BaseException, url: str) -> UntrustedCollector | None:
    """The error to raise for ``exc`` (an ``httpx`` transport error) if it is a certificate that did not verify."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ssl.SSLCertVerificationError):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    reason = seen.verify_message or str(seen)
    return UntrustedCollector(
        f"the collector at {url} presented a certificate that does not verify ({reason}): give the CA certificate "
        f"that signed it with --ca-cert or {CA_CERT_ENV}"
    )
