"""One vocabulary for every command: a short flag means one long option, ``--json`` is always a stdout flag,
and secrets can come from the environment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import typer.main

from latbench.cli import app


def commands() -> Iterator[tuple[str, Any]]:
    """(command path, click command) for every leaf command of ``latbench``."""
    stack: list[tuple[str, Any]] = [("latbench", typer.main.get_command(app))]
    while stack:
        path, command = stack.pop()
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield path, command
        else:
            stack += [(f"{path} {name}", sub) for name, sub in subcommands.items()]


def options() -> Iterator[tuple[str, Any]]:
    for path, command in commands():
        for param in command.params:
            if param.param_type_name == "option":
                yield path, param


def test_the_tree_is_walked():
    paths = {path for path, _ in commands()}
    assert {"latbench measure", "latbench predictor eval", "latbench tasks generate", "latbench deploy"} <= paths
    assert "latbench predictor encodings compute" in paths


def test_each_short_flag_means_one_long_option_everywhere():
    meanings: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, option in options():
        names = [*option.opts, *option.secondary_opts]
        longs = tuple(sorted(n for n in names if n.startswith("--")))
        for short in (n for n in names if not n.startswith("--")):
            meanings[short][" / ".join(longs)].append(path)
    clashes = {short: dict(found) for short, found in meanings.items() if len(found) > 1}
    assert not clashes
    assert {"-s", "-n", "-t", "-o", "-d", "-m"} <= set(meanings)


def test_json_is_a_boolean_flag_wherever_present():
    found = [(path, option) for path, option in options() if "--json" in option.opts]
    assert len(found) > 10
    for path, option in found:
        assert option.is_flag and option.default is False and not option.secondary_opts, path


def test_secrets_and_the_collector_can_come_from_the_environment():
    for path, option in options():
        if "--collector" in option.opts:
            assert option.envvar == "LATBENCH_COLLECTOR", path
        if any("token" in name for name in option.opts):
            assert option.envvar in ("LATBENCH_ADMIN_TOKEN", "LATBENCH_TOKEN"), path
