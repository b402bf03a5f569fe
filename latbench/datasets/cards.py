"""Dataset cards: what a dataset holds and where it comes from, as JSON and Markdown, for ``show`` and exports."""

from __future__ import annotations

import json
from typing import Any

from latbench.datasets.model import Dataset


def describe(ds: Dataset) -> dict[str, Any]:
    """Everything about ``ds`` except its values: devices with coverage and quality, provenance, content hash."""
    return {
        "name": ds.name,
        "space": ds.space,
        "builtin": ds.builtin,
        "n_archs": len(ds.archs),
        "devices": [
            m.as_dict() | {"measured": ds.measured(m.name), "coverage": round(ds.coverage(m.name), 6)}
            for m in ds.devices
        ],
        "provenance": ds.provenance,
        "content_sha256": ds.content_sha256(),
    } | (
        {
            "models": [
                {"arch": a, "sha256": k.sha256, "input_shapes": k.input_shapes} for a, k in zip(ds.archs, ds.models)
            ]
        }
        if ds.models is not None
        else {}
    )


def runtime_label(device: dict[str, Any]) -> str:
    """``onnxruntime 1.20.1 cpu`` from a described device; empty where the source does not say."""
    return " ".join(str(v) for v in (device["runtime"], device["runtime_version"], device["provider"]) if v)


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def markdown(card: dict[str, Any]) -> str:
    """The card as a Markdown page a person reads before trusting the numbers."""
    devices = card["devices"]
    lines = [
        f"# Dataset {card['name']}",
        "",
        f"- space: `{card['space']}`, {card['n_archs']} architectures, {len(devices)} devices",
        f"- latencies in milliseconds; content SHA-256 `{card['content_sha256']}`",
        "",
    ]
    lines += ["## Devices", ""]
    lines += _table(
        ["device", "measured", "coverage", "runtime", "batch", "threads", "median CV", "unstable", "source", "license"],
        [
            [
                d["name"],
                d["measured"],
                f"{d['coverage']:.1%}",
                runtime_label(d),
                d["batch"],
                d["threads"],
                d["quality"].get("median_cv"),
                d["quality"].get("unstable"),
                d["source"],
                d["license"],
            ]
            for d in devices
        ],
    )
    warnings = [d for d in devices if d["quality"].get("stability")]
    if warnings:
        lines += ["", "## Unstable results", ""]
        lines += [f"- `{d['name']}`: {d['quality']['stability']}" for d in warnings]
    described = [d for d in devices if d["description"]]
    if described:
        lines += ["", "## Descriptions", ""] + [f"- `{d['name']}`: {d['description']}" for d in described]
    measured = [d for d in devices if d["settings"] or d["environment"] or d["quality"]]
    if measured:
        lines += ["", "## Measurement settings, environment and quality", ""]
        for d in measured:
            detail = {"settings": d["settings"], "environment": d["environment"], "quality": d["quality"]}
            lines += [f"- `{d['name']}`: `{json.dumps(detail, sort_keys=True)}`"]
    if card.get("models"):
        lines += ["", "## Models", ""]
        lines += _table(
            ["model", "SHA-256", "input shapes"], [[m["arch"], m["sha256"], m["input_shapes"]] for m in card["models"]]
        )
    provenance = dict(card["provenance"])
    notice = provenance.pop("notice", None)
    lines += ["", "## Provenance", ""] + [f"- {k}: {v}" for k, v in provenance.items()]
    export = card.get("export")
    if export:
        lines += ["", "## Files", "", f"Format `{export['format']}`: {export['layout']}", ""]
        lines += [f"- `{path}`: SHA-256 `{sha}`" for path, sha in export["files"].items()]
    if notice:
        lines += ["", "## License", "", notice.strip()]
    return "\n".join(lines) + "\n"
