"""NAS search spaces: canonical architecture strings, seeded sampling, genes, graph encodings, costs and builders.

Spaces are found by name through the ``latbench.spaces`` entry-point group, so third parties add their own
(docs/spaces.md, "Writing a space plugin"); the built-in ones are known even where the installed metadata
predates the group. Nothing here imports torch; the PyTorch builders live in ``latbench.spaces.builders``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from importlib import import_module
from importlib.metadata import entry_points

from latbench.errors import InvalidArchitecture, LatbenchError, UnknownSpace
from latbench.spaces.base import ArchGraph, Costs, SearchSpace
from latbench.spaces.fbnet import FBNet
from latbench.spaces.modelset import MODEL_SET, MODELS, ModelSet
from latbench.spaces.nb201 import NB201
from latbench.spaces.ofa import OFAMobileNetV3

GROUP = "latbench.spaces"
BUILTIN = {
    "nb201": "latbench.spaces.nb201:NB201",
    "fbnet": "latbench.spaces.fbnet:FBNet",
    "ofa-mbv3": "latbench.spaces.ofa:OFAMobileNetV3",
}


@dataclass(frozen=True)
class Registration:
    """Where a space comes from: its ``module:Class`` target and the distribution that registered it."""

    name: str
    target: str
    origin: str


def registrations() -> dict[str, Registration]:
    """Every registered space by lower-case name: the built-ins first, then entry points of installed packages."""
    found = {name: Registration(name, target, "latbench (built-in)") for name, target in BUILTIN.items()}
    for ep in entry_points(group=GROUP):
        name = ep.name.lower()
        if name not in found:
            origin = ep.dist.name if ep.dist is not None else "unknown distribution"
            found[name] = Registration(name, ep.value, origin)
    return found


def shadowed() -> list[Registration]:
    """Entry points that ``registrations`` passes over because their name is taken (a built-in's, or an earlier
    package's): a plugin author registering ``nb201`` would otherwise wonder why nothing changed."""
    taken = set(BUILTIN)
    passed_over = []
    for ep in entry_points(group=GROUP):
        name = ep.name.lower()
        if name in taken:
            origin = ep.dist.name if ep.dist is not None else "unknown distribution"
            if not (name in BUILTIN and ep.value == BUILTIN[name]):  # latbench's own metadata lists its built-ins
                passed_over.append(Registration(name, ep.value, origin))
        taken.add(name)
    return passed_over


def space_names() -> list[str]:
    """Names of the registered spaces, built-ins first."""
    return list(registrations())


_LOADED: dict[str, SearchSpace] = {}


def get_space(name: str) -> SearchSpace:
    """The search space registered as ``name`` (case-insensitive), one shared instance each.

    Entry points are read until a name is first found, so a package installed while latbench runs is seen.
    ``model`` is the model set (``latbench.spaces.modelset``), found here though it is no registered space.
    """
    key = name.lower() if isinstance(name, str) else None
    if key == MODEL_SET:
        return MODELS
    if key is not None and key in _LOADED:
        return _LOADED[key]
    found = registrations()
    if key is None or key not in found:
        raise UnknownSpace(f"unknown search space {name!r}; choose one of: {', '.join(found)}")
    _LOADED[key] = _load(found[key])
    return _LOADED[key]


def _load(reg: Registration) -> SearchSpace:
    """Import and check a registered space once: a broken plugin is a one-line error naming its entry point."""
    module_name, _, attr = reg.target.partition(":")
    where = f"search space {reg.name!r} ({reg.target}, from {reg.origin})"
    imported_before = module_name in sys.modules
    try:
        cls = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        stale = (
            f"; this process imported {module_name} before its package changed: restart it (a running collector "
            "keeps the plugin code it started with)"
            if imported_before
            else ""
        )
        raise UnknownSpace(f"cannot load {where}: {exc}{stale}") from exc
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise UnknownSpace(f"{where} is not a latbench SearchSpace subclass")
    space = cls()
    if getattr(space, "name", None) != reg.name:
        raise UnknownSpace(f"{where} calls itself {getattr(space, 'name', None)!r}; its name must be {reg.name!r}")
    if not space.genes or any(int(g) < 1 for g in space.genes):
        raise UnknownSpace(f"{where} has genes {space.genes!r}; every gene needs at least one choice")
    return space


@dataclass(frozen=True)
class SpaceStatus:
    """A registered space as ``latbench spaces list`` shows it; a space that fails to load says why."""

    name: str
    origin: str
    target: str
    loaded: bool
    genes: int = 0
    default_resolution: int = 0
    builder: str = ""
    builder_available: bool = False
    reasons: list[str] = field(default_factory=list)


def space_status(name: str) -> SpaceStatus:
    """Load space ``name`` and try to import its builder (torch included); failures are reasons, not errors."""
    reg = registrations()[name.lower()]
    try:
        space = get_space(reg.name)
    except LatbenchError as exc:
        return SpaceStatus(reg.name, reg.origin, reg.target, loaded=False, reasons=[str(exc)])
    status = SpaceStatus(
        reg.name,
        reg.origin,
        reg.target,
        loaded=True,
        genes=len(space.genes),
        default_resolution=space.default_resolution,
        builder=space.builder or "",
    )
    try:
        from latbench.spaces.builders import builder_of

        builder_of(space)
    except LatbenchError as exc:
        return replace(status, reasons=[str(exc)])
    return replace(status, builder_available=True)


__all__ = [
    "GROUP",
    "MODEL_SET",
    "NB201",
    "ArchGraph",
    "Costs",
    "FBNet",
    "InvalidArchitecture",
    "ModelSet",
    "OFAMobileNetV3",
    "Registration",
    "SearchSpace",
    "SpaceStatus",
    "get_space",
    "registrations",
    "shadowed",
    "space_names",
    "space_status",
]
