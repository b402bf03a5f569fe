"""The plain-words account of unstable results that every place showing or using results prints."""

from __future__ import annotations

from latbench.stability import left_out, stable_rows, summary


def _row(stable: bool, flags: str = "", load: float | None = 7.2, cores: int | None = 2) -> dict[str, object]:
    return {"stable": stable, "flags": flags, "env_load_1m_before": load, "env_cores_logical": cores}


def test_all_unstable_on_a_busy_machine_reads_as_the_issue_asks():
    rows = [_row(False, "high_cv") for _ in range(120)]
    assert summary(rows) == (
        "120 of 120 results are unstable (high variation between runs): the machine was busy "
        "(load average 7.2 on 2 cores). Re-measure them when the device is idle."
    )


def test_the_advice_is_the_callers_and_by_default_names_no_option():
    """Results from an agent or a dataset were measured where ``--wait-idle`` is not the reader's to give; the
    command that has it (``latbench measure``) passes its own advice."""
    rows = [_row(False, "high_cv"), _row(True)]
    assert "--wait-idle" not in (summary(rows) or "")
    text = summary(rows, "Re-run when it is idle, or use --wait-idle.")
    assert text is not None and text.endswith("2 cores). Re-run when it is idle, or use --wait-idle.")


def test_mixed_reasons_are_counted_and_stable_rows_say_nothing():
    rows = [_row(True), _row(False, "high_cv,drift", load=0.1), _row(False, "drift,waited_idle", load=0.3)]
    text = summary(rows)
    assert text is not None
    assert text.startswith("2 of 3 results are unstable (2 the reference model's speed drifted, 1 high variation")
    assert "the machine looked idle (load average 0.2 on 2 cores)" in text
    assert summary([_row(True), _row(True)]) is None
    assert summary([]) is None


def test_still_busy_after_waiting_is_said_and_files_read_back_as_text_count():
    rows = [_row(False, "high_cv,still_busy", load=None), {"stable": "False", "flags": ["high_cv"]}, _row(True)]
    text = summary(rows)
    assert text is not None and text.startswith("2 of 3 results are unstable (high variation between runs); 1 waited")
    assert "load average" not in text
    assert len(stable_rows(rows)) == 1
    assert left_out(2) == "left out 2 unstable results (use --include-unstable to keep them)"


def test_stable_results_timed_on_a_machine_still_busy_are_said_too():
    # one competitor that never stops on 2 cores: the timing core stays quiet enough for stable runs, yet every
    # result waited the full bound; the user is told, not shown silence
    rows = [_row(True, "still_busy", load=1.3) for _ in range(39)] + [_row(False, "high_cv,still_busy", load=1.3)]
    text = summary(rows)
    assert text is not None and text.startswith("1 of 40 results are unstable (high variation between runs)")
    assert "; 40 waited the full --wait-idle time" in text
    text = summary(rows[:39])
    assert text is not None and text.startswith("39 of 39 results waited the full --wait-idle time")
    assert "count as stable" in text
    assert summary([_row(True, "waited_idle")]) is None  # waited, then timed on a quiet machine: nothing to say


def test_tiny_models_name_the_timer_and_the_os_not_the_load():
    """Finding 3: a 20 us model's spread was blamed on a busy machine, or an idle one was told to wait for idle."""
    rows = [{**_row(False, "high_cv", load=0.6), "latency_ms": 0.021} for _ in range(2)] + [_row(True)]
    text = summary(rows, "Re-run when it is idle, or use --wait-idle.")
    assert text is not None and text.startswith("2 of 3 results are unstable (high variation between runs): each takes")
    assert "under 0.1 ms a run, where timer and OS jitter" in text and "An idle machine will not change that" in text
    assert "idle, or use --wait-idle" not in text and "load average" not in text
    mixed = [*rows, {**_row(False, "high_cv", load=0.6), "latency_ms": 1.2}]
    text = summary(mixed)
    assert text is not None and "; 2 of them take under 0.1 ms a run" in text
    assert "a load average misses bursts under a minute and other virtual machines" in text
