"""``latbench runtimes``: every registered runtime, whether this machine can run it, and why not; and, for
runtimes whose models the LiteRT converter makes, whether that converter is set up."""

from __future__ import annotations

import json
from dataclasses import asdict

from latbench.agents.runtimes import available_runtimes, runtime_status
from latbench.artifacts import LITERT_FORMATS
from latbench.cli import options as opt
from latbench.cli.console import Table, out
from latbench.convert.environment import converter_status


def runtimes_command(
    as_json: opt.AsJson = False,
) -> None:
    """List the runtimes (entry-point group ``latbench.runtimes``) with their providers here, or why they cannot run."""
    statuses = [runtime_status(name) for name in available_runtimes()]
    converter = converter_status() if any(s.artifact_format in LITERT_FORMATS for s in statuses) else None
    conversion = {s.name: converter if s.artifact_format in LITERT_FORMATS else None for s in statuses}
    if as_json:
        print(json.dumps([{**asdict(s), "conversion": conversion[s.name]} for s in statuses], indent=2))
        return
    table = Table("runtime", "available", "version", "artifact", "providers", "not here", "conversion")
    for s in statuses:
        by_reason: dict[str, list[str]] = {}
        for provider, why in s.unavailable_providers.items():
            by_reason.setdefault(why, []).append(provider)
        missing = "; ".join(f"{', '.join(providers)}: {why}" for why, providers in by_reason.items())
        table.add_row(
            s.name,
            "yes" if s.available else "no",
            s.version,
            s.artifact_format,
            ", ".join(s.providers),
            missing if s.available else s.reason,
            conversion[s.name] or "",
        )
    out.print(table)
