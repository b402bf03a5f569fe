"""Numeric precision of a measured network: which artifact a runtime loads for it, and what a result records.

``fp32`` is the float32 network, each runtime's own ``artifact_format``; ``int8`` is the network statically
quantised to int8, for the runtimes that name a format for it in ``Runtime.precision_formats``. A precision is
a different model file, so it is part of the artifact's identity (its format joins the digest) and fp32 and int8
artifacts never mix. Nothing here imports an engine, so a collector can resolve a campaign's format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from latbench.errors import LatbenchError, RuntimeUnavailable

if TYPE_CHECKING:
    from latbench.agents.runtimes.base import Runtime

Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")
DEFAULT: Precision = "fp32"


def check_precision(precision: str) -> Precision:
    for known in PRECISIONS:
        if precision == known:
            return known
    raise LatbenchError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


def artifact_format(runtime: type[Runtime], precision: str) -> str:
    """The artifact format ``runtime`` loads at ``precision``; ``RuntimeUnavailable`` for a pair that does not
    combine (e.g. the torch runtime at int8)."""
    if check_precision(precision) == "fp32":
        return runtime.artifact_format
    fmt = runtime.precision_formats.get(precision)
    if fmt is None:
        offered = ", ".join(["fp32", *runtime.precision_formats])
        raise RuntimeUnavailable(
            f"precision {precision} is not supported by runtime {runtime.name} (it runs: {offered})"
        )
    return fmt


def loadable_formats(runtime: type[Runtime]) -> set[str]:
    """Every artifact format ``runtime`` loads, one per precision it runs."""
    return {runtime.artifact_format, *runtime.precision_formats.values()}


def of_format(fmt: str) -> str:
    """The precision an artifact format holds, as a result records it: ``int8``, ``fp16`` (LiteRT float16
    weights) or ``fp32``."""
    prefix = fmt.split(".")[0] if "." in fmt else ""
    return prefix if prefix in ("int8", "fp16") else "fp32"


__all__ = ["DEFAULT", "PRECISIONS", "Precision", "artifact_format", "check_precision", "loadable_formats", "of_format"]
