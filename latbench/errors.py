"""One exception hierarchy, so callers catch at the level they care about and the CLI maps each to a message."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """An error as one line for a user, a log or a stored record: a ``LatbenchError``'s own first line, anything
    else's prefixed with its type (which says more than an engine's bare message)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first if isinstance(exc, LatbenchError) else f"{type(exc).__name__}: {first}".rstrip(": ")


class LatbenchError(Exception):
    """Base of every error latbench raises on purpose; its message is meant for the user."""

    final = False
    """True where the same job on the same device would fail the same way again (a capability the device lacks,
    a model it cannot take), so a collector should not lease it again: an agent's error result says so."""


class InvalidArchitecture(LatbenchError, ValueError):
    """An architecture string that is not a member of its search space."""


class UnknownSpace(LatbenchError, ValueError):
    """A search-space name latbench does not know."""


class RuntimeUnavailable(LatbenchError):
    """A runtime that is not installed, or cannot run here (for example CUDA without a GPU)."""


class ProfilingUnsupported(RuntimeUnavailable):
    """``--profile`` asked of a runtime (or provider) whose engine offers no per-operator profiler here."""

    final = True


class ArtifactError(LatbenchError):
    """A model artifact that cannot be built, read, or whose content hash does not match."""


class ConverterUnavailable(ArtifactError):
    """No LiteRT converter environment, and none could be set up (``latbench.convert.environment``)."""


class ModelFileError(LatbenchError):
    """A user's model file that latbench cannot time: missing, of no known format, unreadable or unsafe."""

    final = True


class ModelInputError(LatbenchError):
    """Input shapes of a model that are malformed, contradict the model, or leave a dynamic dimension open."""

    final = True


class LocalStorageError(LatbenchError):
    """An agent's own state dir that cannot take a file (disk full, read-only, no permission, damaged): the
    agent's fault, not the job's, so its jobs go back to the queue without counting a failure and the agent stops,
    naming the directory and the cause, rather than fail every job of its device one after another."""


class DeviceUnreachable(LatbenchError):
    """A remote device that cannot be reached (its connection dropped and could not be made again): not the
    job's fault, so its lease is released without counting a failure and the agent tries to reconnect later."""


class ResultsFileError(LatbenchError):
    """A results file that cannot be read, or whose rows were measured with other settings."""


class MissingDependency(LatbenchError):
    """An optional dependency that the requested feature needs and that is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs {package}; install it with: pip install 'latbench[{extra}]'")
        self.package = package
        self.extra = extra


class CollectorError(LatbenchError):
    """A request to a collector that did not succeed; ``status`` and ``code`` say how, where known."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None, detail: object = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


class CollectorUnavailable(CollectorError):
    """The collector could not be reached or failed (refused or torn connection, timeout, 5xx): retry later, not
    before ``retry_after_s`` where the collector said when (``Retry-After``)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        detail: object = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message, status, code, detail)
        self.retry_after_s = retry_after_s


class CollectorRejected(CollectorError):
    """The collector answered 4xx: the same request will fail again, so it must not be retried as is."""


class UntrustedCollector(CollectorError):
    """The collector's TLS certificate does not verify: configuration to fix, not a failure to retry."""


class RequestRejected(LatbenchError):
    """A collector request that cannot be served as asked; ``status`` and ``code`` go into the error response.

    The collector's store raises these before it writes anything, so a rejected request never changes data.
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, detail: object = None) -> None:
        super().__init__(message)
        self.detail = detail


class Unauthenticated(RequestRejected):
    """A request without a token, or with one the collector does not know (or has revoked)."""

    status = 401
    code = "unauthenticated"


class Forbidden(RequestRejected):
    """A known token used where it has no right: the wrong kind of token, or another agent's lease."""

    status = 403
    code = "forbidden"


class NotFound(RequestRejected):
    """A campaign, job, lease or artifact the collector does not have."""

    status = 404
    code = "not_found"


class Conflict(RequestRejected):
    """A request that contradicts stored state, such as a device name another machine already uses."""

    status = 409
    code = "conflict"


class InvalidRequest(RequestRejected):
    """A well-formed request whose content the collector cannot accept (an unknown architecture, say)."""

    status = 422
    code = "invalid"


class RemoteError(LatbenchError):
    """A remote device that cannot be reached, or whose command or benchmark tool failed."""


class HostUnreachable(RemoteError):
    """A remote device that no connection reaches (refused, timed out, no route): booting, or down; unlike a
    refused host key or login, worth trying again."""


class HostKeyRejected(RemoteError):
    """An SSH host whose key is unknown or differs from the pinned one: never connected to, never auto-accepted."""
