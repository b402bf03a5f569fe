"""The spool: results survive restarts, leave only when acked, and rejected ones stay on disk as dead letters."""

from __future__ import annotations

import sqlite3

import pytest

from latbench.agents.spool import Spool, SpoolCounts, SpoolLocked
from tests.agents.factories import result


def test_results_survive_reopening_in_order(tmp_path):
    items = [result(job_id=f"job-{i}") for i in range(5)]
    with Spool(tmp_path / "spool.sqlite") as spool:
        for item in items:
            spool.add(item)
    with Spool(tmp_path / "spool.sqlite") as spool:
        assert spool.pending(100) == items
        assert spool.pending(2) == items[:2]


def test_a_result_is_committed_when_add_returns(tmp_path):
    """A second connection (another process would do the same) sees it at once: nothing waits for a close."""
    spool = Spool(tmp_path / "spool.sqlite")
    item = result()
    spool.add(item)
    other = sqlite3.connect(tmp_path / "spool.sqlite")
    assert other.execute("SELECT result_id FROM results").fetchall() == [(str(item.result_id),)]
    other.close()
    spool.close()


def test_ack_deletes_and_ignores_unknown_ids(tmp_path):
    a, b, c = result(), result(), result()
    with Spool(tmp_path / "spool.sqlite") as spool:
        for item in (a, b, c):
            spool.add(item)
        spool.ack([a.result_id, c.result_id, result().result_id])
        assert spool.pending(10) == [b]
        assert spool.counts() == SpoolCounts(pending=1, dead=0)
    with Spool(tmp_path / "spool.sqlite") as spool:
        assert spool.pending(10) == [b]


def test_dead_letters_are_kept_but_never_pending_again(tmp_path):
    a, b = result(), result()
    with Spool(tmp_path / "spool.sqlite") as spool:
        spool.add(a)
        spool.add(b)
        spool.dead_letter([a.result_id], "409 lease_not_yours: not your lease")
    with Spool(tmp_path / "spool.sqlite") as spool:
        assert spool.pending(10) == [b]
        assert spool.dead_letters() == [(a, "409 lease_not_yours: not your lease")]
        assert spool.counts() == SpoolCounts(pending=1, dead=1)


def test_pending_keeps_a_batch_under_the_byte_limit_but_returns_at_least_one(tmp_path):
    big = [result(times_ms=[1.0] * 1000, stats=None, error="x") for _ in range(3)]
    with Spool(tmp_path / "spool.sqlite") as spool:
        for item in big:
            spool.add(item)
        assert len(spool.pending(10, max_bytes=10)) == 1
        assert len(spool.pending(10, max_bytes=2 * len(big[0].model_dump_json()) + 10)) == 2


def test_one_process_at_a_time(tmp_path):
    with Spool(tmp_path / "spool.sqlite"), pytest.raises(SpoolLocked, match="in use by another process"):
        Spool(tmp_path / "spool.sqlite")
    with Spool(tmp_path / "spool.sqlite") as spool:
        assert spool.counts() == SpoolCounts(pending=0, dead=0)


@pytest.mark.slow  # two CLI processes
def test_requeue_makes_dead_letters_pending_again_through_the_cli(tmp_path):
    import json
    import subprocess
    import sys

    with Spool(tmp_path / "spool.sqlite") as spool:
        items = [result(f"job-{i}") for i in range(3)]
        for item in items:
            spool.add(item)
        spool.dead_letter([items[0].result_id, items[2].result_id], "409 conflict: a collector's bug")
        assert spool.counts() == SpoolCounts(pending=1, dead=2)
        command = [sys.executable, "-m", "latbench", "agent", "requeue", "--state-dir", str(tmp_path), "--json"]
        busy = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert busy.returncode == 1 and "in use by another process" in busy.stderr  # not while an agent runs
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"requeued": 2, "pending": 3}
    with Spool(tmp_path / "spool.sqlite") as spool:
        assert [i.result_id for i in spool.pending(10)] == [i.result_id for i in items]
        assert spool.dead_letters() == []
