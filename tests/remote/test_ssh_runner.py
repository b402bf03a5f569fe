"""The SSH runner measures a real ONNX artifact on "the remote host" (this machine, through a real sshd) and
produces the record a local measurement produces; host keys are verified, never accepted blindly."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import latbench
from latbench.agents.measure import TimingSettings, time_model
from latbench.agents.remote import open_runner
from latbench.agents.remote.device import OWNER_FILE
from latbench.agents.remote.ssh import SshDevice, SshTarget, connect, fingerprint
from latbench.agents.reports import result_item
from latbench.agents.runtimes.onnxruntime import OnnxRuntime
from latbench.errors import HostKeyRejected, RemoteError
from latbench.protocol import MODEL_SET, JobSpec, MeasurementSettings
from tests.support.processes import LATBENCH, env

pytestmark = pytest.mark.slow  # a real sshd

FAST = TimingSettings(warmup_runs=2, warmup_time_s=0.02, min_runs=10, min_time_s=0.05, max_attempts=1)
ALWAYS_FILLED = ("stats", "times_ms", "warmup_runs", "attempts", "attempt_flags", "wall_s", "runtime_version",
                 "optimization", "latbench_version", "numpy_version", "state_before", "state_after")  # fmt: skip


def _job(sha256: str) -> JobSpec:
    return JobSpec(
        job_id="j1", lease_id="l1", campaign_id="c1", space="nb201", arch="a", arch_index=None,
        runtime="onnxruntime", provider="cpu", batch=1, threads=1, resolution=32, classes=8, opset=17,
        artifact_sha256=sha256, artifact_bytes=0, reference_sha256=None, settings=MeasurementSettings(),
        attempt=1, expires_at=datetime.now(timezone.utc) + timedelta(minutes=1),
    )  # fmt: skip


def _open(sshd, **options):
    options.setdefault("known_hosts", sshd.known_hosts)
    return open_runner(sshd.url, command=sys.executable, key_file=sshd.user_key, **options)


def test_a_remote_measurement_is_the_same_record_as_a_local_one(sshd, conv_model):
    with _open(sshd) as runner:
        workdir = Path(runner.device.workdir)
        remote, engine = runner.measure(conv_model, "onnxruntime", threads=1, provider="cpu", settings=FAST)
        left_behind = sorted(p.name for p in workdir.iterdir())
    assert left_behind == [OWNER_FILE, f"latbench-agent-{latbench.__version__}.zip"]  # the artifact is gone
    assert not workdir.exists()  # and the work dir with the runner

    with OnnxRuntime(threads=1) as runtime:
        runtime.load(conv_model)
        local = time_model(runtime, FAST)
        local_item = result_item(_job("0" * 64), local, runtime)
    remote_item = result_item(_job("0" * 64), remote, engine)  # type: ignore[arg-type]
    for item in (local_item, remote_item):
        dumped = item.model_dump()
        assert all(dumped[f] not in (None, [], "") for f in ALWAYS_FILLED), dumped
    assert remote_item.runtime_version == local_item.runtime_version
    assert remote_item.optimization == local_item.optimization == "all"
    assert len(remote_item.times_ms) == remote_item.stats.runs >= FAST.min_runs
    assert remote.stats.min_ms <= remote.stats.median_ms <= remote.stats.max_ms
    assert 0.05 < remote.stats.median_ms / local.stats.median_ms < 20  # the same model on the same CPU


def test_the_remote_device_is_described_and_offers_its_runtimes(sshd):
    with _open(sshd) as runner:
        offers = runner.offers(["onnxruntime"])
        info = runner.machine_info()
    assert [o.name for o in offers] == ["onnxruntime"] and "cpu" in offers[0].providers
    from latbench.agents.environment import machine_info

    assert info.fingerprint() == machine_info().fingerprint()  # the stub reports the device like a local agent


def _other_key_file(tmp_path: Path, sshd) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")], check=True)
    kind, key = (tmp_path / "impostor.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    return tmp_path / "known_hosts"


def _host_fingerprint(sshd) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(sshd.host_key_pub)], capture_output=True, text=True).stdout.split()[
        1
    ]


def test_a_changed_host_key_is_refused(sshd, tmp_path):
    with pytest.raises(HostKeyRejected, match=r"does not match .*refusing to connect"):
        _open(sshd, known_hosts=_other_key_file(tmp_path, sshd))


def test_an_unknown_host_is_refused_with_the_fingerprint_to_check(sshd, tmp_path):
    (tmp_path / "empty").write_text("")
    with pytest.raises(HostKeyRejected, match="is not in") as refused:
        _open(sshd, known_hosts=tmp_path / "empty")
    assert _host_fingerprint(sshd) in str(refused.value)


def test_a_missing_known_hosts_file_is_refused_naming_host_port_and_fingerprint(sshd, tmp_path):
    missing = tmp_path / "no-such-dir" / "known_hosts"
    with pytest.raises(HostKeyRejected, match="no known_hosts file at") as refused:
        _open(sshd, known_hosts=missing)
    message = str(refused.value)
    assert f"the host key of [127.0.0.1]:{sshd.port} (ssh-ed25519 {_host_fingerprint(sshd)})" in message
    assert f"--host-key-fingerprint {_host_fingerprint(sshd)}" in message
    assert not missing.parent.exists()


def test_pinning_accepts_only_that_key_and_records_it(sshd, tmp_path):
    target, known = SshTarget.parse(sshd.url), tmp_path / "pinned"
    with pytest.raises(HostKeyRejected, match="not the pinned"):
        connect(target, key_file=sshd.user_key, known_hosts=known, host_key_fingerprint="SHA256:" + "A" * 43)
    assert not known.exists()
    connect(target, key_file=sshd.user_key, known_hosts=known, host_key_fingerprint=_host_fingerprint(sshd)).close()
    client = connect(target, key_file=sshd.user_key, known_hosts=known)  # verified against the pinned file now
    key = client.get_transport().get_remote_server_key()
    client.close()
    assert fingerprint(key) == _host_fingerprint(sshd)


def test_the_agent_cli_refuses_a_wrong_host_key_in_one_line(sshd, tmp_path):
    done = subprocess.run(
        [*LATBENCH, "agent", "run", "--collector", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "state"),
         "--remote", sshd.url, "--key", str(sshd.user_key), "--known-hosts", str(_other_key_file(tmp_path, sshd))],
        capture_output=True, text=True, env={**env(), "LATBENCH_TOKEN": "t"}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "does not match" in done.stderr and "refusing to connect" in done.stderr


def test_the_work_dir_is_private_while_in_use(sshd, conv_model):
    """Uploaded models (users' own, with --models) are in it: other users of the device must not read them."""
    with _open(sshd) as runner:
        runner.measure(conv_model, "onnxruntime", settings=FAST)
        workdir = Path(runner.device.workdir)
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
        assert workdir.stat().st_uid == os.getuid()


def test_a_work_dir_that_exists_already_is_refused_and_left_alone(sshd, tmp_path):
    taken = tmp_path / "latbench-taken"
    taken.mkdir()
    (taken / "theirs").write_text("x")
    with pytest.raises(RemoteError, match=r"work dir .*latbench-taken exists already; refusing"):
        SshDevice.open(SshTarget.parse(sshd.url), key_file=sshd.user_key, known_hosts=sshd.known_hosts,
                       workdir=str(taken))  # fmt: skip
    assert (taken / "theirs").read_text() == "x"


def test_an_unknown_remote_scheme_is_a_clear_error():
    with pytest.raises(RemoteError, match="ssh://user@host"):
        open_runner(f"telnet://{uuid.uuid4().hex}")


def _stub_pids(workdir: str) -> list[int]:
    """The device-side stub processes of one runner (the remote host is this machine)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            mine = proc.name.isdigit() and workdir.encode() in (proc / "environ").read_bytes()
            if mine and b"latbench.agents.remote\0serve" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_one_stub_process_serves_the_session_and_a_dead_one_is_replaced(sshd, conv_model):
    with _open(sshd) as runner:
        runner.measure(conv_model, "onnxruntime", settings=FAST)
        runner.measure(conv_model, "onnxruntime", settings=FAST)
        first = _stub_pids(runner.device.workdir)
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)  # between two jobs: the next job starts a new one
        m, _ = runner.measure(conv_model, "onnxruntime", settings=FAST)
        assert m.stats.runs >= FAST.min_runs
        second = _stub_pids(runner.device.workdir)
        assert len(second) == 1 and second != first
    assert _stub_pids(runner.device.workdir) == []


def test_a_model_file_with_a_dynamic_dimension_is_timed_there_with_the_shapes_given(sshd, tmp_path):
    from tests.support.modelfiles import transformer_onnx

    model = transformer_onnx(tmp_path / "tiny.onnx")  # input_ids: 1 x sequence
    with _open(sshd) as runner:
        with pytest.raises(RemoteError, match="input 'input_ids' has a dynamic dimension 1"):
            runner.measure(model, "onnxruntime", settings=FAST)
        m, engine = runner.measure(model, "onnxruntime", settings=FAST, input_shapes={"input_ids": [1, 24]})
        _, short = runner.measure(model, "onnxruntime", settings=FAST, input_shapes={"input_ids": [1, 4]})
    assert m.stats.runs >= FAST.min_runs and engine.input_shapes == {"input_ids": (1, 24)}
    assert short.input_shapes == {"input_ids": (1, 4)}  # each job its own shapes, in one stub process
    job = _job("0" * 64).model_copy(update={"space": MODEL_SET, "input_shapes": {"input_ids": [1, 24]}})
    assert result_item(job, m, engine).input_shapes == "input_ids:1x24"  # type: ignore[arg-type]
