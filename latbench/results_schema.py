"""The columns of a result row, in order: the one description ``latbench measure``'s results file, the collector's
export and the results reader share.

Adding a column means adding it here, giving it a value where rows are built (``latbench.local`` and
``latbench.collectors.export``; ``result_row`` refuses a row without it) and, for the collector, a store
migration. Nothing here imports beyond the standard library, so both sides can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Dtype = Literal["str", "int", "float", "bool", "list"]
"""``list`` is a list of floats (a list column in parquet, a JSON array in CSV)."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: Dtype
    meaning: str
    optional: bool = False
    """A builder may leave it out (empty): a column one side records before the other does."""


RECORDED_SETTINGS: tuple[tuple[str, Dtype], ...] = (
    ("warmup_runs", "int"),
    ("warmup_time_s", "float"),
    ("min_runs", "int"),
    ("min_time_s", "float"),
    ("max_time_s", "float"),
    ("cv_threshold", "float"),
    ("drift_tolerance", "float"),
    ("max_attempts", "int"),
)
"""The timing settings a row records, as ``cfg_<name>`` columns."""

MACHINE_FIELDS: tuple[tuple[str, Dtype], ...] = (
    ("cpu_model", "str"),
    ("machine", "str"),
    ("cores_physical", "int"),
    ("cores_logical", "int"),
    ("memory_gb", "float"),
    ("os", "str"),
    ("python", "str"),
    ("hostname", "str"),
    ("cpu_id", "str"),
    ("cpu_isa", "str"),
)
"""The machine description a row records, as ``env_<name>`` columns."""

RESULT_COLUMNS: tuple[Column, ...] = (
    Column("arch", "str", "the architecture, canonical; for a model file, its file name"),
    Column("arch_index", "int", "its index in the space's official table, if it has one"),
    Column("space", "str", "the search space; 'model' for a model file"),
    Column("runtime", "str", "the inference engine"),
    Column("runtime_version", "str", "the engine's version"),
    Column("provider", "str", "the engine's execution provider (device)"),
    Column("precision", "str", "fp32, int8 or fp16: the artifact's numeric precision (empty for a model file)"),
    Column("batch", "int", "batch size; for a model file, the first dimension of its first input"),
    Column("threads", "int", "engine threads"),
    Column("resolution", "int", "input resolution"),
    Column("classes", "int", "output classes"),
    Column("opset", "int", "ONNX opset of the exported network"),
    Column("artifact_sha256", "str", "hash of the exact file timed"),
    Column(
        "input_shapes", "str", "a model file's input shapes as timed, 'name:1x3x224x224;...' (empty for architectures)"
    ),
    Column(
        "input_data",
        "str",
        "a model file's input values: 'random(seed=0)' or 'npz(sha256=...)' (--input-data); empty where not recorded",
        optional=True,
    ),
    Column("latency_ms", "float", "median run time"),
    Column("mean_ms", "float", "mean run time"),
    Column("std_ms", "float", "standard deviation of run times"),
    Column("min_ms", "float", "fastest run"),
    Column("max_ms", "float", "slowest run"),
    Column("p90_ms", "float", "90th percentile run time"),
    Column("p99_ms", "float", "99th percentile run time"),
    Column("mad_ms", "float", "median absolute deviation of run times"),
    Column("cv", "float", "coefficient of variation of run times"),
    Column("runs", "int", "timed runs"),
    Column("warmup_runs", "int", "warm-up runs before them"),
    Column("attempts", "int", "timing attempts until stable or out of attempts"),
    Column("stable", "bool", "whether the kept attempt had no problem"),
    Column("flags", "str", "the kept attempt's problems and notes, comma-separated"),
    Column("attempt_flags", "str", "each attempt's problems ('ok' for none), semicolon-separated"),
    Column("ref_ratio", "float", "the reference probe's reading furthest from its baseline (1.0 = no drift)"),
    Column("wall_s", "float", "wall time of all attempts"),
    Column("load_ms", "float", "loading the model: session creation (for tvm, compiling when not cached)"),
    Column("first_run_ms", "float", "the first, cold inference after loading"),
    Column("peak_rss_mb", "float", "peak resident memory (MiB) of the measuring process during the timed runs"),
    Column("idle_waited_s", "float", "seconds --wait-idle waited for other programs to calm down, all attempts"),
    Column("idle_load", "float", "cores other programs kept busy when the kept attempt started (--wait-idle)"),
    Column("profile", "str", "the per-operator profile's file in the results file's .profiles folder (--profile)"),
    Column("measured_at", "str", "UTC time of the result, ISO 8601"),
    Column("device_id", "str", "fingerprint of the hardware configuration"),
    Column("latbench_version", "str", "latbench that measured"),
    *(Column(f"cfg_{name}", dtype, f"timing setting {name}") for name, dtype in RECORDED_SETTINGS),
    Column("cfg_optimization", "str", "the engine's graph optimisation level"),
    Column("cfg_pin_core", "int", "the one core the measuring process was confined to (--pin-core); empty: none"),
    Column("cfg_reference", "bool", "whether the reference probe watched for drift (false: --no-reference)"),
    Column("cfg_wait_idle", "bool", "whether each attempt waited for idle (--wait-idle); empty where not reported"),
    *(Column(f"env_{name}", dtype, f"machine {name}") for name, dtype in MACHINE_FIELDS),
    Column("env_numpy", "str", "numpy version of the measuring process"),
    Column("env_load_1m_before", "float", "1-minute load average before timing"),
    Column("env_load_1m_after", "float", "1-minute load average after timing"),
    Column("env_cpu_freq_mhz_before", "float", "CPU frequency before timing"),
    Column("env_cpu_freq_mhz_after", "float", "CPU frequency after timing"),
    Column("env_governor", "str", "CPU frequency governor"),
    Column("env_temperature_c_before", "float", "CPU temperature before timing"),
    Column("env_temperature_c_after", "float", "CPU temperature after timing"),
    Column("env_memory_available_gb", "float", "available memory before timing"),
    Column("times_ms", "list", "every timed run, in order"),
)
"""A row of ``latbench measure``'s results file."""

EXPORT_COLUMNS: tuple[Column, ...] = (
    *RESULT_COLUMNS,
    Column("device", "str", "the collector's name of the device"),
    Column("agent", "str", "the agent that measured"),
    Column("result_id", "str", "the collector's id of the result (latbench results show ID)"),
)
"""A row of a collector's results export: a results-file row plus where it was measured."""

DTYPES: dict[str, Dtype] = {c.name: c.dtype for c in EXPORT_COLUMNS}


def model_batch(input_shapes: str | None) -> int | None:
    """A model file's ``batch``: the first dimension of its first input, from its ``input_shapes`` cell
    (``image:4x3x96x96;...``, inputs in the model's order; names may hold ``:``); ``None`` without one."""
    first = (input_shapes or "").split(";", 1)[0]
    dims = first.rpartition(":")[2].split("x", 1)[0]
    return int(dims) if dims.isdigit() else None


def result_row(values: Mapping[str, object], columns: tuple[Column, ...] = RESULT_COLUMNS) -> dict[str, object]:
    """``values`` in the order of ``columns``, an optional column left out empty; a missing or unknown column is a bug
    in the row's builder."""
    names = [c.name for c in columns]
    values = {**{c.name: None for c in columns if c.optional}, **values}
    if set(values) != set(names):
        missing, extra = sorted(set(names) - set(values)), sorted(set(values) - set(names))
        raise ValueError(f"a result row must have the schema's columns (missing: {missing}, unknown: {extra})")
    return {name: values[name] for name in names}
