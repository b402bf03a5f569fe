"""``latbench devices rename|retire|unretire`` as an admin types them: the device's name alone on stdout, the
change with ``--json``, one line on stderr for a refusal (exit 1) and a usage error for a bad name (exit 2)."""

from __future__ import annotations

import json

import pytest

from tests.support.served import Harness

pytestmark = pytest.mark.slow  # a served collector and the CLI in subprocesses


def test_retire_rename_and_unretire_on_the_command_line(served: Harness):
    served.agent("pi-1", device="bench")
    served.agent("pi-2", device="spare")
    retired = served.run_cli("devices", "retire", "bench")
    assert retired.returncode == 0, retired.stderr
    stamp = retired.stdout.strip()
    assert stamp.startswith("bench@retired-") and "--device-name bench" in retired.stderr
    assert "bench" not in served.run_cli("devices").stdout
    listed = json.loads(served.run_cli("devices", "--all", "--json").stdout)
    assert [(d["device"], d["state"]) for d in listed] == [(stamp, "retired"), ("spare", "live")]
    assert listed[0]["former_name"] == "bench" and "retired" in served.run_cli("devices", "--all").stdout

    renamed = served.run_cli("devices", "rename", "spare", "rack-1", "--json")
    assert renamed.returncode == 0, renamed.stderr
    assert {k: json.loads(renamed.stdout)[k] for k in ("name", "previous_name", "state")} == {
        "name": "rack-1", "previous_name": "spare", "state": "live"}  # fmt: skip

    taken = served.run_cli("devices", "unretire", stamp, "--name", "rack-1")
    assert taken.returncode == 1 and taken.stdout == ""
    assert taken.stderr.startswith("error: ") and len(taken.stderr.strip().splitlines()) == 1
    assert "'rack-1' is taken by another device" in taken.stderr
    back = served.run_cli("devices", "unretire", stamp)
    assert (back.returncode, back.stdout.strip()) == (0, "bench"), back.stderr
    assert [d["name"] for d in json.loads(served.run_cli("devices", "--json").stdout)] == ["bench", "rack-1"]


def test_a_name_no_device_may_have_is_a_usage_error_before_the_collector_is_asked(served: Harness):
    served.agent("pi-1", device="bench")
    for args in (["rename", "bench", "two words"], ["unretire", "bench", "--name", "-dash-first"]):
        done = served.run_cli("devices", *args)
        assert done.returncode == 2 and "is not a device name" in done.stderr, (args, done.stderr)
    missing = served.run_cli("devices", "retire", "nobody")
    assert missing.returncode == 1 and "no device 'nobody'" in missing.stderr
    assert [d["name"] for d in json.loads(served.run_cli("devices", "--json").stdout)] == ["bench"]
