"""Running the collector as a service for months: schema upgrades across replicas, health and readiness, backups
of a running store, a log with timestamps and an audit trail, the shipped systemd units and private files.
Every collector here is a real ``latbench collector serve`` process on a real store."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from latbench.collectors.db import Store
from latbench.collectors.migrations import head, upgrade
from latbench.collectors.schema import SchemaWatch
from tests.support.postgres import postgres_cluster
from tests.support.processes import ADMIN_TOKEN, LATBENCH, Collector, env, wait_for
from tests.support.served import ARCHS, MACHINE, fingerprint

NEWER = "9999"
"""A revision no release so far has: the store of a newer latbench."""
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING|ERROR) +(.*)$")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def store_at(db_url: str, revision: str) -> None:
    """Migrate the store at ``db_url`` to ``revision``, or stamp it with ``NEWER``, as a newer release would."""
    store = Store(db_url)
    try:
        upgrade(store.engine, head() if revision == NEWER else revision)
        if revision == NEWER:
            stamp(db_url, NEWER)
    finally:
        store.close()


def stamp(db_url: str, revision: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def log_lines(collector: Collector) -> list[tuple[str, str]]:
    """The (level, message) of every log line the collector wrote."""
    return [(m.group(1), m.group(2)) for line in collector.log.read_text().splitlines() if (m := LOG_LINE.match(line))]


@pytest.fixture
def serving(db_url: str, tmp_path: Path, artifact_cache: Path) -> Iterator[Collector]:
    """A collector process on a store that the release before this one (revision 0008) created."""
    store_at(db_url, "0008")
    collector = Collector(db_url, tmp_path / "data", 0, None, artifact_cache)
    try:
        yield collector.start()
    finally:
        collector.stop()


@pytest.mark.slow
def test_a_store_a_newer_release_migrated_is_refused_in_one_line_and_left_as_it_is(db_url: str, tmp_path: Path):
    store_at(db_url, NEWER)
    done = subprocess.run([*LATBENCH, "collector", "serve", "--db", db_url, "--data-dir", str(tmp_path), "--port", "0"],
                          capture_output=True, text=True, env=env(), timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert f"the store is at schema revision {NEWER}, which this latbench" in line
    assert f"schema up to {head()}) does not know: a newer latbench migrated it" in line
    assert "Run that newer release on every replica, or restore a backup taken before the upgrade" in line
    assert "upgrades are one-way" in line
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == NEWER
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_replica_stops_serving_once_a_newer_release_migrates_its_store(db_url: str, serving: Collector):
    assert ("WARNING", f"migrated the store from schema revision 0008 to {head()} (one-way: collectors of an older "
            "latbench stop serving it)") in log_lines(serving)  # fmt: skip
    with httpx.Client(base_url=serving.url, timeout=30) as http:
        health = http.get("/v1/health").json()
        assert health["schema"] == head() and health["store_schema"] == head() and health["status"] == "ok"
        assert http.get("/v1/ready").json() == {"status": "ready", "version": health["version"], "schema": head()}
        assert http.get("/v1/admin/devices", headers=ADMIN).status_code == 200

        stamp(serving.db_url or "", NEWER)  # a replica of a newer release migrated the store
        ready = http.get("/v1/ready")  # a probe reads the revision now; other requests at most every 30 s
        assert ready.status_code == 503 and ready.json()["code"] == "schema_mismatch"
        for method, path in [("GET", "/v1/admin/devices"), ("POST", "/v1/heartbeat"), ("GET", "/"),
                             ("POST", "/v1/admin/campaigns"), ("HEAD", "/v1/admin/devices")]:  # fmt: skip
            refused = http.request(method, path, headers=ADMIN, json={} if method == "POST" else None)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "2", (method, path)
            if method != "HEAD":
                assert refused.json()["code"] == "schema_mismatch"
                assert f"schema revision {NEWER}, which a newer latbench migrated it to" in refused.json()["message"]
                assert "stop this replica and run the newer release" in refused.json()["message"]
        health = http.get("/v1/health")  # liveness: the process is fine, and says what it found
        assert health.status_code == 200 and health.json()["store_schema"] == NEWER

        stamp(serving.db_url or "", head())  # restored: the replica serves again
        assert http.get("/v1/ready").status_code == 200
        assert http.get("/v1/admin/devices", headers=ADMIN).status_code == 200
    refusals = [message for level, message in log_lines(serving) if level == "ERROR"]
    assert len(refusals) == 1 and "answers 503 to every request" in refusals[0], refusals
    assert ("WARNING", f"the store is back at schema revision {head()}: serving again") in log_lines(serving)


def test_the_schema_is_read_again_at_most_once_per_interval(tmp_path: Path):
    """Off the hot path: most requests read no revision; one per interval does, and then every request is refused."""
    store = Store(f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        upgrade(store.engine)
        now = [0.0]
        watch = SchemaWatch(store.engine, interval_s=30.0, clock=lambda: now[0])
        stamp(f"sqlite:///{tmp_path / 'c.sqlite'}", NEWER)
        now[0] = 29.0
        assert not watch.claim() and watch.serving
        now[0] = 30.0
        assert watch.claim() and not watch.claim()  # one caller of the many at that moment reads it
        assert watch.check() == NEWER and not watch.serving
        assert "which a newer latbench migrated it to" in watch.refusal()
    finally:
        store.close()


@pytest.mark.slow
def test_ready_touches_the_store_and_health_does_not(tmp_path: Path, artifact_cache: Path):
    with postgres_cluster() as cluster:
        collector = Collector(cluster.url, tmp_path / "data", 0, None, artifact_cache)
        try:
            collector.start()
            assert ("INFO", f"created the store at schema revision {head()}") in log_lines(collector)
            with httpx.Client(base_url=collector.url, timeout=30) as http:
                assert http.get("/v1/ready").status_code == 200
                cluster.stop()
                ready = http.get("/v1/ready")
                assert ready.status_code == 503 and ready.json()["code"] == "store_unavailable"
                assert http.get("/v1/health").status_code == 200
                cluster.start()
                wait_for(lambda: http.get("/v1/ready").status_code == 200, 30, "the store to be back")
        finally:
            collector.stop()


def _enroll_body(name: str) -> dict[str, object]:
    return {"name": name, "fingerprint": fingerprint(name), "machine": MACHINE,
            "runtimes": [{"name": "onnxruntime", "version": "1.20.0", "providers": ["cpu"]}]}  # fmt: skip


@pytest.mark.slow
def test_the_log_has_timestamped_levelled_lines_and_an_audit_line_per_admin_action(
    tmp_path: Path, artifact_cache: Path
):
    collector = Collector(None, tmp_path / "data", 0, None, artifact_cache)
    try:
        collector.start()
        with httpx.Client(base_url=collector.url + "/v1", headers=ADMIN, timeout=30) as http:
            enroll = http.post("/admin/enrollment-tokens", json={"name": "lab"}).json()
            agent = httpx.post(collector.url + "/v1/enroll", json=_enroll_body("rack-1"), timeout=30,
                               headers={"Authorization": f"Bearer {enroll['token']}"})  # fmt: skip
            assert agent.status_code == 201, agent.text
            http.post(f"/admin/enrollment-tokens/{enroll['token_id']}/revoke").raise_for_status()
            second = http.post("/admin/admin-tokens", json={"name": "second"}).json()
            http.post(f"/admin/admin-tokens/{second['token_id']}/revoke").raise_for_status()
            campaign = http.post("/admin/campaigns", json={"space": "nb201", "archs": ARCHS[:1], "name": "c1"}).json()
            http.post(f"/admin/campaigns/{campaign['campaign_id']}/cancel").raise_for_status()
            http.post("/admin/agents/rack-1/revoke").raise_for_status()
    finally:
        assert collector.stop() == 0
    text = collector.log.read_text()
    assert ADMIN_TOKEN not in text and enroll["token"] not in text and second["token"] not in text
    audit = [message for level, message in log_lines(collector) if level == "INFO"]
    agent_id, device_id = agent.json()["agent_id"], agent.json()["device_id"]
    expected = [
        f"enrollment token {enroll['token_id']} ('lab') created by admin token env-admin",
        f"agent 'rack-1' ({agent_id}) enrolled on device 'rack-1' ({device_id}) with enroll token {enroll['token_id']}",
        f"enrollment token {enroll['token_id']} revoked by admin token env-admin",
        f"admin token {second['token_id']} ('second') created by admin token env-admin",
        f"admin token {second['token_id']} revoked by admin token env-admin",
        f"campaign {campaign['campaign_id']} ('c1') created by admin token env-admin",
        f"campaign {campaign['campaign_id']} cancelled by admin token env-admin",
        f"agent 'rack-1' ({agent_id}) revoked by admin token env-admin; 0 leased job(s) back in the queue",
    ]
    assert [line for line in audit if line in expected] == expected, audit


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.mark.slow
def test_a_backup_of_a_running_sqlite_store_holds_everything_and_serves_as_a_store(
    tmp_path: Path, artifact_cache: Path
):
    data = tmp_path / "data"
    collector = Collector(None, data, 0, None, artifact_cache)
    backup = tmp_path / "backups" / "collector-backup.sqlite"
    backup.parent.mkdir()
    try:
        collector.start()
        with httpx.Client(base_url=collector.url + "/v1", headers=ADMIN, timeout=30) as http:
            token_ids = [http.post("/admin/enrollment-tokens", json={"name": f"t{i}"}).json()["token_id"]
                         for i in range(3)]  # fmt: skip
        assert (data / "collector.sqlite-wal").stat().st_size > 0  # rows the store's own file may not hold yet
        done = subprocess.run([*LATBENCH, "collector", "backup", "--data-dir", str(data), str(backup)],
                              capture_output=True, text=True, env=env(), timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{backup}\n"
        again = subprocess.run([*LATBENCH, "collector", "backup", "--data-dir", str(data), str(backup)],
                               capture_output=True, text=True, env=env(), timeout=120)  # fmt: skip
        assert again.returncode == 1 and "exists already" in again.stderr
    finally:
        assert collector.stop() == 0
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert sorted(p.name for p in backup.parent.iterdir()) == [backup.name]  # one file, no -wal beside it
    assert {"campaigns", "tokens", "results", "artifact_blobs", "alembic_version"} <= _tables(backup)
    restored = Collector(f"sqlite:///{backup}", tmp_path / "restored", 0, None, artifact_cache)
    try:
        restored.start()
        listed = httpx.get(restored.url + "/v1/admin/enrollment-tokens", headers=ADMIN, timeout=30).json()
        assert {row["token_id"] for row in listed} == set(token_ids)
    finally:
        assert restored.stop() == 0


@pytest.mark.slow
def test_a_postgresql_store_is_backed_up_with_pg_dump_and_the_command_says_how(tmp_path: Path):
    url = "postgresql+psycopg://lb:s3cret@db.example:5432/latbench"
    done = subprocess.run([*LATBENCH, "collector", "backup", "--db", url, str(tmp_path / "x.dump")],
                          capture_output=True, text=True, env=env(), timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "s3cret" not in done.stderr
    assert f"pg_dump -Fc -f {tmp_path / 'x.dump'} postgresql://lb@db.example:5432/latbench" in done.stderr


def _modes(data: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in [data, *data.iterdir()] if not path.is_symlink()}


@pytest.mark.slow
def test_the_data_dir_and_the_store_files_are_private_under_a_permissive_umask(tmp_path: Path, artifact_cache: Path):
    """The data dir and artifacts dir ``serve`` creates are 0700, the SQLite files 0600, with umask 000; a store
    a release before this one left readable to all is made 0600 at the next start."""
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    previous = os.umask(0)
    try:
        with log.open("w") as out:
            serve = subprocess.Popen([*LATBENCH, "collector", "serve", "--port", "0", "--data-dir", str(data)],
                                     stdout=out, stderr=subprocess.STDOUT, env=env())  # fmt: skip
    finally:
        os.umask(previous)
    try:
        wait_for(lambda: "collector listening on" in log.read_text(), 60, "the collector to listen")
        modes = _modes(data)
        assert modes.pop("data") == 0o700 and modes.pop("artifacts") == 0o700
        assert modes.pop("models", 0o700) == 0o700
        files = ["collector.sqlite", "collector.sqlite-wal", "collector.sqlite-shm", "collector.sqlite.builder-lock"]
        assert modes == dict.fromkeys(files, 0o600)
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0, log.read_text()
    (data / "collector.sqlite").chmod(0o644)  # as a release before this one left it
    collector = Collector(None, data, 0, None, artifact_cache)
    try:
        collector.start()
        assert _modes(data)["collector.sqlite"] == 0o600 and _modes(data)["collector.sqlite-wal"] == 0o600
    finally:
        assert collector.stop() == 0


def _service(name: str) -> dict[str, str]:
    """The ``[Service]`` settings of a shipped unit, a repeated one (``Environment=``) as its values joined by
    newlines."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in resources.files("latbench").joinpath(name).read_text().splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return {key: "\n".join(values) for key, values in settings.items()}


@pytest.mark.parametrize("name", ["agents/latbench-agent.service", "collectors/latbench-collector.service"])
def test_the_shipped_units_run_hardened_and_talk_https(name: str):
    service = _service(name)
    for setting, value in [("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("StateDirectoryMode", "0700"), ("UMask", "0077")]:  # fmt: skip
        assert service.get(setting) == value, setting
    assert service["StateDirectory"] == "latbench"  # writable under ProtectSystem=strict: the only place written
    assert "LATBENCH_HOME=%S/latbench" in service["Environment"]
    if name.startswith("agents"):
        assert "LATBENCH_COLLECTOR=https://" in service["Environment"]
        assert "LATBENCH_CA_CERT=" in service["Environment"]
    else:
        assert service["ExecStart"].split()[1:3] == ["collector", "serve"] and "--tls-cert" in service["ExecStart"]
        assert "EnvironmentFile" in service and service["KillSignal"] == "SIGTERM"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", ["agents/latbench-agent.service", "collectors/latbench-collector.service"])
def test_systemd_accepts_the_shipped_units(name: str, tmp_path: Path):
    unit = tmp_path / Path(name).name
    unit.write_text(resources.files("latbench").joinpath(name).read_text())
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    problems = [line for line in done.stderr.splitlines() if "Command /usr/local/bin/latbench" not in line
                and "is not executable" not in line and "No such file" not in line]  # fmt: skip
    assert not problems, done.stderr
