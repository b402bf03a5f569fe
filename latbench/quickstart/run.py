"""``latbench quickstart``: from nothing to a transferred latency predictor for this machine.

Steps, each recorded in the workspace when it finishes (a re-run skips finished steps and resumes the
campaign where it stopped): plan what to measure, measure it through a private collector and a local agent,
build the device dataset, transfer the shipped predictor, judge it on the held-out architectures, write the
report. The collector and agent are the real programs, so the result is the same as a deployed setup's.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latbench.agents.measure import TimingSettings
from latbench.errors import LatbenchError
from latbench.progress import Progress, notify
from latbench.quickstart import embedded
from latbench.quickstart.evaluate import Evaluation, evaluate
from latbench.quickstart.plan import Plan, make_plan
from latbench.quickstart.report import write_report
from latbench.quickstart.workspace import Workspace


@dataclass(frozen=True)
class Defaults:
    """What a quickstart measures unless told otherwise: held-out architectures and how long to time each."""

    holdout: int = 100
    min_time_s: float = 1.0
    min_runs: int = 50
    warmup_time_s: float = 0.5

    def settings(self) -> TimingSettings:
        return TimingSettings(min_time_s=self.min_time_s, min_runs=self.min_runs, warmup_time_s=self.warmup_time_s)


DEFAULTS = {"ofa-mbv3": Defaults(holdout=30, min_time_s=0.5, min_runs=20, warmup_time_s=0.3)}
"""Spaces whose networks are slow to run (OFA MobileNetV3: about 45 ms an image on one core, 100x an NB201 cell)
hold out fewer architectures and time each for less, so a plain run stays within minutes."""


def defaults(space: str) -> Defaults:
    from latbench.spaces import get_space

    return DEFAULTS.get(get_space(space).name, Defaults())


STEPS = ("plan", "measure", "dataset", "transfer", "evaluate", "report")
"""Steps in order; ``dataset`` runs inside ``measure`` while the collector is still up."""


@dataclass
class QuickstartResult:
    workspace: Path
    device: str
    evaluation: Evaluation
    timings: dict[str, float]
    outputs: dict[str, str] = field(default_factory=dict)
    stability: str | None = None
    """How many results were unstable and why (``latbench.stability.summary``); None when all were stable."""
    left_out: int = 0
    """Unstable results the transfer and the evaluation did not use."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "device": self.device,
            "evaluation": self.evaluation.as_dict(),
            "timings_s": self.timings,
            "outputs": self.outputs,
            "stability": self.stability,
            "unstable_left_out": self.left_out,
        }


def _settings_dict(settings: TimingSettings) -> dict[str, Any]:
    from latbench.protocol import MeasurementSettings

    return MeasurementSettings.model_validate(settings, from_attributes=True).model_dump()


def _measure(
    ws: Workspace,
    plan: Plan,
    space: str,
    threads: int,
    settings: dict[str, Any],
    progress: Progress | None,
    wait_idle: bool,
    include_unstable: bool,
) -> str:
    """Run the campaign to the end through a private collector and a local agent; returns the campaign id."""
    from latbench.client import CollectorClient
    from latbench.protocol import FINISHED_STATES, CampaignCreate

    token = ws.admin_token()
    logs = ws.logs_dir
    port = ws.state.get("port")
    if port is not None and not embedded.port_is_free(port):
        # The agent is enrolled with the collector's URL: on a new port it enrolls again (same device).
        (ws.agent_dir / "agent.json").unlink(missing_ok=True)
        port = None
    with (
        embedded.collector(ws.collector_dir, token, logs / "collector.log", port or 0) as url,
        CollectorClient(url, token) as client,
    ):
        ws.state["port"] = int(url.rsplit(":", 1)[1])
        ws.save()
        campaign_id = ws.state.get("campaign_id")
        if campaign_id is None:
            spec = CampaignCreate(
                space=space,
                archs=plan.archs,
                threads=threads,
                settings=settings,  # type: ignore[arg-type]
                name="quickstart",
            )
            campaign_id = client.create_campaign(spec)
            ws.state["campaign_id"] = campaign_id
            ws.save()
        status = client.campaign(campaign_id)
        if status.state not in FINISHED_STATES:
            enroll = ws.state.get("enrollment_token")
            if enroll is None or not (ws.agent_dir / "agent.json").exists():
                enroll = client.create_enrollment_token("quickstart").token
                ws.state["enrollment_token"] = enroll
                ws.save()
            with embedded.agent(url, enroll, ws.agent_dir, logs / "agent.log", wait_idle=wait_idle) as agent:
                while status.state not in FINISHED_STATES:
                    done = sum(d.done + d.failed for d in status.devices)
                    notify(progress, "measure", done, len(plan.archs))
                    if agent.poll() is not None:
                        raise LatbenchError(f"the local agent stopped ({agent.returncode}); see {logs / 'agent.log'}")
                    time.sleep(0.5)
                    status = client.campaign(campaign_id)
        if status.state == "failed":
            where = f"{logs / 'agent.log'} and {logs / 'collector.log'}"
            raise LatbenchError(f"the measurement campaign failed: {status.error}; see {where}")
        if status.state == "cancelled":
            raise LatbenchError(f"the measurement campaign was cancelled; to start again, remove {ws.root}")
        notify(progress, "measure", len(plan.archs), len(plan.archs))
        failed = sum(d.failed for d in status.devices)
        if failed:
            failures = f"{failed} architecture(s) failed to measure; see {logs / 'agent.log'}"
            notify(progress, "measure", message=failures)
        _build_dataset(ws, url, token, campaign_id, include_unstable)
    return campaign_id


def _build_dataset(ws: Workspace, url: str, token: str, campaign_id: str, include_unstable: bool) -> None:
    """The device dataset, of stable results only unless ``include_unstable``; it records how many were not."""
    from latbench import datasets
    from latbench.datasets.build import build_from_campaign

    started = time.perf_counter()
    name = ws.state["settings"]["dataset"]
    ds = build_from_campaign(campaign_id, collector=url, token=token, name=name, include_unstable=include_unstable)
    path = datasets.save(ds, overwrite=True)
    quality = ds.devices[0].quality
    ws.finish(
        "dataset",
        time.perf_counter() - started,
        name=name,
        path=str(path),
        device=ds.device_names[0],
        stability=quality.get("stability"),
        left_out=quality.get("unstable_left_out", 0),
    )


def _measured(name: str) -> dict[str, float]:
    from latbench import datasets

    ds = datasets.load(name)
    vector = ds.vector(ds.device_names[0])
    return {a: float(v) for a, v in zip(ds.archs, vector) if np.isfinite(v)}


def _record_setup(model: Any, name: str) -> None:
    """Keep in ``model`` how and where the dataset's device was measured, for ``latbench search --verify`` to
    measure the same way, and on this machine only where it is the one."""
    from latbench import datasets
    from latbench.predictor import setups

    device = datasets.load(name).devices[0]
    setups.record(model, setups.MeasurementSetup.of_device(device))
    setups.record_machine(model, setups.MeasuredOn.of_device(device, name))


def quickstart(
    directory: str | Path,
    *,
    space: str = "nb201",
    samples: int = 20,
    holdout: int | None = None,
    seed: int = 0,
    threads: int = 1,
    settings: TimingSettings | None = None,
    dataset_name: str | None = None,
    progress: Progress | None = None,
    wait_idle: bool = True,
    include_unstable: bool = False,
) -> QuickstartResult:
    """Measure this machine, transfer the shipped predictor to it and judge it; resumable in ``directory``.

    ``holdout`` and ``settings`` default to the space's ``defaults``. ``progress`` hears each step of ``STEPS``
    start (but ``dataset``), and the count of ``measure``. The agent waits for other programs to calm down before
    each timing unless not ``wait_idle``; unstable results are kept in the store but used only with
    ``include_unstable``."""
    from latbench import predictor
    from latbench.spaces import get_space

    space = get_space(space).name
    ws = Workspace(Path(directory))
    holdout = defaults(space).holdout if holdout is None else holdout
    measure_settings = _settings_dict(settings or defaults(space).settings())
    ws.check_settings(
        {
            "space": space,
            "samples": samples,
            "holdout": holdout,
            "seed": seed,
            "threads": threads,
            "measure": measure_settings,
            "dataset": dataset_name or f"quickstart-{space}",
            "include_unstable": include_unstable,
        }
    )
    pretrained_file = predictor.pretrained_path(space)

    notify(progress, "plan")
    if not ws.done("plan"):
        started = time.perf_counter()
        plan = make_plan(space, samples, holdout, seed)
        ws.finish("plan", time.perf_counter() - started, **plan.as_dict())
    plan = Plan(transfer=ws.facts("plan")["transfer"], holdout=ws.facts("plan")["holdout"])

    notify(progress, "measure")
    if not ws.done("measure"):
        started = time.perf_counter() - ws.state.get("measure_seconds_before", 0.0)
        try:
            campaign_id = _measure(ws, plan, space, threads, measure_settings, progress, wait_idle, include_unstable)
        finally:
            ws.state["measure_seconds_before"] = time.perf_counter() - started
            ws.save()
        ws.finish("measure", time.perf_counter() - started, campaign=campaign_id)
    dataset = ws.facts("dataset")
    measured = _measured(dataset["name"])
    device = dataset["device"]

    notify(progress, "transfer")
    model_path = ws.root / "model.pt"
    transfer_archs = [a for a in plan.transfer if a in measured]
    if not ws.done("transfer"):
        started = time.perf_counter()
        pre = predictor.load_pretrained(space)
        latency = [measured[a] for a in transfer_archs]
        # with out-of-fold errors, from which `latbench search --confirm` starts its margin
        model = predictor.transfer_and_validate(pre, device, transfer_archs, latency, seed=seed)
        _record_setup(model, dataset["name"])
        model.save(model_path)
        # The collector's dashboard draws measured vs predicted for a device with a model in models/.
        (ws.collector_dir / "models").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_path, ws.collector_dir / "models" / f"{device}.pt")
        ws.finish("transfer", time.perf_counter() - started, model=str(model_path), samples=len(transfer_archs))

    notify(progress, "evaluate")
    started = time.perf_counter()
    model = predictor.Predictor.load(model_path)
    holdout_archs = [a for a in plan.holdout if a in measured]
    predicted_holdout = model.predict(holdout_archs)
    predicted_transfer = model.predict(transfer_archs)
    evaluation = evaluate(space, holdout_archs, measured, predicted_holdout, list(measured))
    ws.finish("evaluate", time.perf_counter() - started, **{k: v for k, v in evaluation.as_dict().items()})

    notify(progress, "report")
    started = time.perf_counter()
    timings = {
        step: float(ws.facts(step)["seconds"]) for step in ("plan", "measure", "dataset", "transfer", "evaluate")
    }
    outputs = {
        "dataset": dataset["path"],
        "model": str(model_path),
        "report": str(ws.root / "report.html"),
        "pretrained": str(pretrained_file),
        "collector store": str(ws.collector_dir),
    }
    write_report(
        ws.root / "report.html",
        space=space,
        device=device,
        transfer=transfer_archs,
        holdout=holdout_archs,
        measured=measured,
        predicted_holdout=predicted_holdout,
        predicted_transfer=predicted_transfer,
        evaluation=evaluation,
        timings=timings,
        outputs=outputs,
        stability=dataset.get("stability"),
        left_out=int(dataset.get("left_out", 0)),
    )
    ws.finish("report", time.perf_counter() - started)
    timings["report"] = float(ws.facts("report")["seconds"])
    return QuickstartResult(
        workspace=ws.root,
        device=device,
        evaluation=evaluation,
        timings=timings,
        outputs=outputs,
        stability=dataset.get("stability"),
        left_out=int(dataset.get("left_out", 0)),
    )
