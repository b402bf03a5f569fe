"""One vocabulary for every command: a short flag means one long option, ``--json`` is always a stdout flag,
and secrets can come from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from rich.text import Text

from latbench.cli import app


def tree() -> Iterator[tuple[str, Any]]:
    """(command path, click command or group) for every command and group of ``latbench``."""
    stack: list[tuple[str, Any]] = [("latbench", typer.main.get_command(app))]
    while stack:
        path, command = stack.pop()
        yield path, command
        stack += [(f"{path} {name}", sub) for name, sub in getattr(command, "commands", {}).items()]


def commands() -> Iterator[tuple[str, Any]]:
    """(command path, click command) for every leaf command of ``latbench``."""
    return ((path, command) for path, command in tree() if getattr(command, "commands", None) is None)


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


def test_every_device_option_has_the_short_flag():
    """``-d`` is ``--device`` wherever a command has one (README: the same short flag in every command)."""
    found = [path for path, option in options() if "--device" in option.opts]
    assert {"latbench search", "latbench campaign create", "latbench dataset build", "latbench dataset import"} <= set(
        found
    )
    assert [path for path, option in options() if "--device" in option.opts and "-d" not in option.opts] == []


def test_no_help_text_loses_words_to_rich_markup():
    """Help is rendered as rich markup, where '[default: 100]' or '[low, high]' reads as a style tag and vanishes;
    a bracket meant as text is escaped ('\\[')."""
    texts: list[tuple[str, str]] = []
    for path, command in tree():  # one walk: each walk builds the whole click tree
        texts += [(path, command.help or "")]
        texts += [(f"{path} {param.name}", getattr(param, "help", None) or "") for param in command.params]
    lost = [(path, text) for path, text in texts if Text.from_markup(text).plain != text.replace("\\[", "[")]
    assert not lost
    assert any("\\[" in text for _, text in texts)  # the escaped ones are among those read


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
            assert getattr(option.callback, "__name__", None) == "typed_secret", path  # warned of when typed


@pytest.mark.slow
def test_a_token_typed_on_the_command_line_works_with_a_warning_and_one_from_the_environment_without():
    """Against a port nobody listens on, both fail the same way; only the typed one is warned of, and the token
    itself is never printed."""
    command = [sys.executable, "-m", "latbench", "devices", "--collector", "http://127.0.0.1:9"]
    env = {k: v for k, v in os.environ.items() if k != "LATBENCH_ADMIN_TOKEN"}
    typed = subprocess.run([*command, "--token", "s3cret-token"], capture_output=True, text=True, env=env, timeout=60)
    env["LATBENCH_ADMIN_TOKEN"] = "s3cret-token"
    kept = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert typed.returncode == kept.returncode == 1
    warning = "warning: --token on the command line is visible to other users (ps); set LATBENCH_ADMIN_TOKEN instead"
    assert typed.stderr.splitlines()[0] == warning
    assert "warning" not in kept.stderr
    assert typed.stderr.splitlines()[1:] == kept.stderr.splitlines()
    assert "s3cret-token" not in typed.stderr + kept.stderr
