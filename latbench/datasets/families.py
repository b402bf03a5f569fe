"""Device families (GPUs, server CPUs, phones, edge accelerators): the one place a device's kind is decided.

Leave-one-family-out splits hold out a whole family, so a predictor is judged on a kind of hardware it never
pretrained on. The family is read from what a dataset says about a device: its name (HELP's ``titan_rtx_32``,
BRP-NAS's ``mobile_dsp_snapdragon_855_hexagon_690_int8``), its description and its execution provider. Rules
are tried in order; the first whose pattern matches wins, so a phone's GPU is a phone and a Jetson is edge.
"""

from __future__ import annotations

import re

from latbench.datasets.model import DeviceMeta

FAMILIES = ("gpu", "cpu", "phone", "edge")
OTHER = "other"
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("phone", re.compile(r"^mobile_|^pixel|^samsung|^essential|\bphone\b|snapdragon|hexagon|adreno")),
    ("edge", re.compile(r"^embedded_|eyeriss|fpga|raspi|raspberry|jetson|edge_?tpu|\basic\b")),
    ("gpu", re.compile(r"gpu|cuda|tensorrt|1080ti|2080ti|titan|v100|a100|h100|geforce")),
    ("cpu", re.compile(r"cpu|xeon|epyc|core_i\d|^gold_|^silver_")),
)


def device_family(device: DeviceMeta) -> str:
    """``gpu``, ``cpu``, ``phone`` or ``edge`` for ``device``; ``other`` when nothing it says names its kind."""
    text = " ".join(str(v) for v in (device.name, device.description, device.provider, device.runtime) if v).lower()
    for family, pattern in _RULES:
        if pattern.search(text):
            return family
    return OTHER
