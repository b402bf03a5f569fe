"""A collector's URL, checked the same way by the agent's client and the admin's: a URL that can never reach a
collector (no scheme, no host, a port out of range) is one clear error at once, not a retry loop."""

from __future__ import annotations

from urllib.parse import urlsplit

from latbench.errors import LatbenchError


def collector_url(url: str) -> str:
    """``url`` without a trailing slash, once it names a scheme (http or https), a host and a usable port."""
    cleaned = url.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https"):
        raise LatbenchError(f"the collector URL must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise LatbenchError(f"the collector URL names no host: {url!r} (e.g. http://HOST:8700)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise LatbenchError(f"the collector URL's port is not a port number from 1 to 65535: {url!r}")
    return cleaned
