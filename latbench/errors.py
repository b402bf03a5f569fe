"""One exception hierarchy, so callers catch at the level they care about and the CLI maps each to a message."""

from __future__ import annotations


class LatbenchError(Exception):
    """Base of every error latbench raises on purpose; its message is meant for the user."""


class InvalidArchitecture(LatbenchError, ValueError):
    """An architecture string that is not a member of its search space."""


class UnknownSpace(LatbenchError, ValueError):
    """A search-space name latbench does not know."""


class RuntimeUnavailable(LatbenchError):
    """A runtime that is not installed, or cannot run here (for example CUDA without a GPU)."""


class ArtifactError(LatbenchError):
    """A model artifact that cannot be built, read, or whose content hash does not match."""


class ResultsFileError(LatbenchError):
    """A results file that cannot be read, or whose rows were measured with other settings."""


class MissingDependency(LatbenchError):
    """An optional dependency that the requested feature needs and that is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs {package}; install it with: pip install 'latbench[{extra}]'")
        self.package = package
        self.extra = extra
