"""Convert the HELP latency tables in ``shared/data`` into the built-in datasets ``help-nb201``, ``help-fbnet`` and
``help-ofa``.

Run from the repository root (``python scripts/build_help_datasets.py ../shared/data [nb201 fbnet ofa]``); it
rewrites ``latbench/datasets/data/help-*/`` of the tables named (all by default) and checks that every value reads
back exactly as published.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
from pathlib import Path

import numpy as np

from latbench.datasets import import_table, storage
from latbench.datasets.model import Dataset, DeviceMeta, new_provenance

DATA = Path(__file__).resolve().parents[1] / "latbench" / "datasets" / "data"
HELP = "HayeonLee/HELP @ 45f70eb92d0d735970a33b608d1544ad3c52f285"
HWNAS = "GATECH-EIC/HW-NAS-Bench @ 393bb8a02554dcd28e091fbbdb4d7aefe590018a"
CITATION = [
    "H. Lee, S. Lee, S. Chong, S. J. Hwang, HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via "
    "Meta-Learning, NeurIPS 2021",
    "C. Li et al., HW-NAS-Bench: Hardware-Aware Neural Architecture Search Benchmark, ICLR 2021 (devices eyeriss, "
    "fpga, pixel3, raspi4)",
]
GPU_BATCH = re.compile(r"^(1080ti|2080ti|titan_rtx|titanx|titanxp|titan_xp|v100)_(\d+)$")
TABLES = ("nb201", "fbnet", "ofa")
OFA_GPUS = {
    "2080ti": "NVIDIA GeForce RTX 2080 Ti",
    "titan_rtx": "NVIDIA Titan RTX",
    "titan_xp": "NVIDIA Titan Xp",
    "v100": "NVIDIA V100",
}
OFA_CITATION = [
    CITATION[0],
    "H. Cai, C. Gan, T. Wang, Z. Zhang, S. Han, Once-for-All: Train One Network and Specialize it for Efficient "
    "Deployment, ICLR 2020 (the OFA MobileNetV3 space; Apache-2.0)",
]
OFA_CAVEAT = (
    "Architectures are subnets of OFA's MobileNetV3 supernet at the row's input resolution r; HELP records no width "
    "multiplier. latbench's ofa-mbv3 space builds them at w1.2 (ofa_mbv3_d234_e346_k357_w1.2, the only OFA "
    "MobileNetV3 supernet HELP uses): likely, but unconfirmed. HELP does not state framework, precision, warm-up or "
    "repeats; a value is inferred to be one forward pass of the whole batch."
)


def device_rows(shared: Path, space: str) -> dict[str, dict[str, str]]:
    with (shared / "devices.csv").open(newline="") as f:
        return {r["device"]: r for r in csv.DictReader(f) if r["space"] == space}


def convert(shared: Path, space: str, notice: str) -> Dataset:
    source = shared / f"{space}_latency.csv.gz"
    raw = import_table(source, space, name=f"help-{space}")
    rows = device_rows(shared, space)
    metas = []
    for name in raw.device_names:
        row = rows[name]
        hwnas = "HW-NAS-Bench" in row["source"]
        batch = GPU_BATCH.match(name)
        metas.append(
            DeviceMeta(
                name=name,
                source=row["source"],
                description=row["description"],
                license="MIT, (c) 2024 HayeonLee" + ("; MIT, (c) 2022 GaTech-EIC" if hwnas else ""),
                batch=int(batch.group(2)) if batch else None,
            )
        )
    provenance = new_provenance(
        "builtin",
        source=f"HELP latency tables ({HELP}; HW-NAS-Bench devices from {HWNAS}), via shared/data",
        converted_from=source.name,
        sha256=raw.provenance["sha256"],
        rows=raw.provenance["rows"],
        license="MIT",
        citation=CITATION,
        notice=notice,
    )
    ds = Dataset(
        name=raw.name, space=space, archs=raw.archs, latency=raw.latency, devices=tuple(metas), provenance=provenance
    )
    check(ds, source)
    return ds


def convert_ofa(shared: Path, notice: str) -> Dataset:
    """The wide OFA table: row i is HELP's index i, kept as the dataset's architecture order."""
    source = shared / "ofa_latency.csv.gz"
    raw = import_table(source, "ofa-mbv3", name="help-ofa", unit="ms", wide=True)
    metas = []
    for name in raw.device_names:
        batch = GPU_BATCH.match(name)
        assert batch is not None, name
        metas.append(
            DeviceMeta(
                name=name,
                source="HELP",
                description=f"{OFA_GPUS[batch.group(1)]} GPU; batch size {batch.group(2)} (from name suffix)",
                license="MIT, (c) 2024 HayeonLee",
                batch=int(batch.group(2)),
                classes=1000,
            )
        )
    provenance = new_provenance(
        "builtin",
        source=f"HELP OFA MobileNetV3 latency table ({HELP}, data/ofa/ofa_archs.pt and data/ofa/latency/*.pt), "
        "via shared/data",
        converted_from=source.name,
        sha256=raw.provenance["sha256"],
        rows=raw.provenance["rows"],
        license="MIT",
        citation=OFA_CITATION,
        caveat=OFA_CAVEAT,
        notice=notice,
    )
    ds = Dataset(
        name=raw.name,
        space="ofa-mbv3",
        archs=raw.archs,
        latency=raw.latency,
        devices=tuple(metas),
        provenance=provenance,
    )
    check_wide(ds, source)
    return ds


def check_wide(ds: Dataset, source: Path) -> None:
    """Row i of the source is architecture i, and every cell reads back exactly."""
    import gzip

    with gzip.open(source, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(ds.archs) and not np.isnan(ds.latency).any()
    for i, r in enumerate(rows):
        assert ds.archs[i] == r["arch"], i
        for j, device in enumerate(ds.device_names):
            assert ds.latency[j, i] == float(r[device]), (i, device)


def check(ds: Dataset, source: Path) -> None:
    """Every source row must read back exactly, and every (device, arch) must be present."""
    import gzip

    position = {a: i for i, a in enumerate(ds.archs)}
    rows = {d: i for i, d in enumerate(ds.device_names)}
    with gzip.open(source, "rt", newline="") as f:
        n = 0
        for r in csv.DictReader(f):
            assert ds.latency[rows[r["device"]], position[r["arch"]]] == float(r["latency_ms"])
            n += 1
    assert n == ds.latency.size and not np.isnan(ds.latency).any()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared", type=Path, help="the shared/data directory")
    parser.add_argument("tables", nargs="*", choices=TABLES, default=list(TABLES), help="tables to rebuild")
    args = parser.parse_args()
    notice = (DATA / "NOTICE.md").read_text()
    for table in args.tables:
        ds = convert_ofa(args.shared, notice) if table == "ofa" else convert(args.shared, table, notice)
        target = DATA / ds.name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        storage.write(ds, target)
        print(f"{ds.name}: {len(ds.devices)} devices x {len(ds.archs)} archs -> {target}")


if __name__ == "__main__":
    main()
