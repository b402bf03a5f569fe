"""Which parts of latbench may import which: every import statement of every module, read with ``ast``.

Imports inside functions and ``TYPE_CHECKING`` blocks count too: a lazy import is still a dependency, only a
later one. Each rule says why it holds; the checker itself is tested on made-up modules below.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import latbench

ROOT = Path(latbench.__file__).parent
STANDARD = sys.stdlib_module_names | {"__future__"}


@dataclass(frozen=True)
class Rule:
    """Modules at or under ``where`` (but not those in ``spared``) import none of ``forbidden`` nor anything under
    them; with ``only`` set, they import nothing but the standard library and ``only``."""

    where: str
    reason: str
    forbidden: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    spared: tuple[str, ...] = ()


RULES = (
    Rule(
        "latbench.agents",
        "an agent runs on small devices where torch may be missing or too big; only the torch runtime needs it",
        forbidden=("torch",),
        spared=("latbench.agents.runtimes.torch",),
    ),
    Rule(
        "latbench.agents",
        "an agent installs and runs without the collector's, the datasets' or the predictor's dependencies, and "
        "talks to a collector only through latbench.protocol",
        forbidden=(
            "latbench.collectors",
            "latbench.datasets",
            "latbench.predictor",
            "latbench.search",
            "latbench.quickstart",
            "latbench.cli",
            "latbench.local",
            "latbench.catalog",
            "latbench.client",
            "latbench.deploy",
        ),
    ),
    Rule(
        "latbench.collectors",
        "datasets, predictors, search and local measuring build on the collector's results; the collector "
        "learns about datasets and predictors only through the Catalog it is handed (latbench.catalog)",
        forbidden=(
            "latbench.local",
            "latbench.datasets",
            "latbench.predictor",
            "latbench.search",
            "latbench.quickstart",
            "latbench.cli",
            "latbench.catalog",
            "latbench.client",
        ),
    ),
    Rule(
        "latbench.datasets",
        "a dataset is built from a collector's results over HTTP (latbench.client), never from its store or "
        "code; the predictor builds on datasets, so datasets importing it would be a cycle",
        forbidden=("latbench.collectors", "latbench.predictor", "latbench.catalog", "latbench.cli"),
    ),
    Rule(
        "latbench.protocol",
        "the messages agents and collectors share: both sides and third-party clients load it, so it needs "
        "nothing beyond pydantic",
        only=("pydantic", "latbench.errors"),
    ),
    Rule(
        "latbench.client",
        "the admin client belongs to no side: it speaks the protocol over HTTP, so the CLI, datasets and search "
        "use a collector without importing it",
        only=("httpx", "pydantic", "latbench.errors", "latbench.protocol", "latbench.tls", "latbench.urls"),
    ),
    Rule(
        "latbench.tls",
        "how every client (agents, the admin client) verifies a collector: a leaf they all can import",
        only=("latbench.errors",),
    ),
    Rule(
        "latbench.urls",
        "how every client checks a collector's URL: a leaf they all can import",
        only=("latbench.errors",),
    ),
)


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    names: tuple[str, ...]
    rule: Rule

    def __str__(self) -> str:
        verb = "must not" if self.rule.only is None else "may not"
        return f"{self.module}:{self.line} imports {self.names[-1]}, but {self.rule.where} {verb}: {self.rule.reason}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, source: str, is_package: bool = False) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(line, what it may name) of every name imported in ``source``: ``import a.b`` names ``a.b``, and
    ``from a import b`` names ``a`` and, since ``b`` may be a module, ``a.b``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, (alias.name,)) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield from ((node.lineno, (base, f"{base}.{alias.name}")) for alias in node.names)


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(module: str, source: str, rules: tuple[Rule, ...] = RULES, is_package: bool = False) -> list[Violation]:
    found = []
    for rule in rules:
        if not within(module, (rule.where,)) or within(module, rule.spared):
            continue
        for line, names in imported(module, source, is_package):
            if any(within(name, rule.forbidden) for name in names) or (
                rule.only is not None
                and not any(within(name, rule.only) or name.partition(".")[0] in STANDARD for name in names)
            ):
                found.append(Violation(module, line, names, rule))
    return found


def modules() -> Iterator[tuple[str, str, bool]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield module_name(path), path.read_text(), path.name == "__init__.py"


def test_latbench_follows_its_layering():
    found = [v for name, source, package in modules() for v in violations(name, source, is_package=package)]
    assert not found, "\n".join(map(str, found))


def test_every_rule_governs_real_modules():
    """A renamed package or module must not leave a rule guarding nothing."""
    names = [name for name, _, _ in modules()]
    for rule in RULES:
        assert any(within(n, (rule.where,)) for n in names), rule.where
        for spared in rule.spared:
            assert spared in names, spared


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("latbench.collectors.dashboard", "from latbench.datasets import cards"),
        ("latbench.collectors.dashboard", "from latbench import datasets"),
        ("latbench.collectors.dashboard", "from ..datasets.build import build_from_rows"),
        ("latbench.collectors", "from ..local import REFERENCE_ARCH"),
        ("latbench.collectors.dashboard", "def predict():\n    from latbench.predictor import Predictor\n"),
        ("latbench.collectors.db", "import latbench.local"),
        ("latbench.datasets.build", "def f():\n    from latbench.collectors.client import CollectorClient\n"),
        ("latbench.agents.daemon", "import torch.nn as nn"),
        ("latbench.agents.runtimes.torch", "from latbench.collectors import models"),
        ("latbench.agents.remote.ssh", "class A:\n    def m(self):\n        import latbench.cli.main\n"),
        ("latbench.protocol", "import httpx"),
        ("latbench.protocol", "from latbench.spaces import get_space"),
        ("latbench.client", "from latbench.collectors.models import JobRow"),
    ],
)
def test_the_checker_finds_a_broken_rule(module: str, source: str):
    assert len(violations(module, source, is_package=module == "latbench.collectors")) == 1


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("latbench.agents.runtimes.torch", "def load():\n    import torch\n"),
        ("latbench.agents.daemon", "from latbench.agents.client import AgentClient\nimport numpy"),
        ("latbench.collectors.campaigns", "from latbench.artifacts import REFERENCE_KEY"),
        ("latbench.datasets.build", "from latbench.client import CollectorClient"),
        ("latbench.catalog", "from latbench.datasets import cards\nfrom latbench.predictor import Predictor"),
        ("latbench.protocol", "from __future__ import annotations\nimport uuid\nfrom pydantic import BaseModel"),
        ("latbench.client", "import httpx\nfrom latbench.errors import CollectorError"),
        ("latbench.collectors_extra", "from latbench.datasets import cards"),
    ],
)
def test_the_checker_lets_allowed_imports_through(module: str, source: str):
    assert violations(module, source) == []
