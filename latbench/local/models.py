"""Users' own model files, measured as ``latbench measure --model`` does: found (directories expanded), inspected
and refused one by one with a line that names the file, fed their input shapes or data, and timed like
architectures (``record`` makes their rows).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from latbench.agents.measure import TimingSettings
from latbench.agents.modelfile import (
    FORMATS,
    InputData,
    ModelFile,
    check_input_names,
    format_shapes,
    parse_input_shapes,
    random_description,
)
from latbench.agents.quiet import QuietPolicy
from latbench.agents.runtimes import get_runtime
from latbench.benches import CannotTime
from latbench.errors import LatbenchError, ModelInputError, one_line
from latbench.precision import DEFAULT as DEFAULT_PRECISION
from latbench.progress import Progress, notify
from latbench.results_schema import model_batch
from latbench.spaces import MODEL_SET

if TYPE_CHECKING:
    from latbench.agents.remote.runner import RemoteRunner


from latbench.local import record

Refused = Callable[[str, str], None] | None
"""Told of a model file that cannot be timed: its path and why, as one line. Without it, a warning."""


def _refuse(on_refused: Refused, path: str, reason: str) -> None:
    """Report a refused model as one line that names the file."""
    line = reason if path in reason or Path(path).name in reason else f"{path}: {reason}"
    if on_refused:
        on_refused(path, line)
    else:
        warnings.warn(line, stacklevel=3)


def _tell(progress: Progress | None, line: str, stacklevel: int) -> None:
    """A note on the models (not a refusal): on the progress display, or as a warning to a Python caller, whose
    frame is ``stacklevel`` above the caller of this."""
    if progress is not None:
        notify(progress, "measure", message=line)
    else:
        warnings.warn(line, stacklevel=stacklevel + 1)


def _recorded_shapes(row: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    text = str(row.get("input_shapes") or "")
    return parse_input_shapes(text.split(";")) if text else {}


def _model_files(paths: Sequence[str | Path], on_refused: Refused) -> list[Path]:
    """``paths`` with each directory replaced by its model files, as ``campaign create --models`` takes them
    (``latbench.client.model_paths``); a directory without any is refused."""
    from latbench.client import model_paths

    found: list[Path] = []
    for path in map(Path, paths):
        try:
            found += model_paths([path]) if path.is_dir() else [path]
        except LatbenchError as exc:
            _refuse(on_refused, str(path), one_line(exc))
    return found


def format_refusal(model: ModelFile, runtime: str, fmt: str) -> str | None:
    """Why ``runtime``, which loads ``fmt`` files, cannot take ``model``; ``None`` if it can. Said before any work
    (a campaign's upload, a measurement) rather than by the runtime or the collector after it."""
    if model.format == fmt:
        return None
    kind = {"onnx": "an ONNX file", "tflite": "a LiteRT model"}[model.format]
    use = {"onnx": "onnxruntime or tvm", "tflite": "tflite"}[model.format]
    return f"{kind}, which runtime {runtime} does not take; measure it with {use}"


def _open_models(
    paths: Sequence[str | Path],
    runtime: str,
    fmt: str,
    shapes: Mapping[str, tuple[int, ...]],
    on_refused: Refused,
    same: list[tuple[Path, ModelFile]],
) -> list[ModelFile]:
    """The distinct models among ``paths`` (directories give their model files) that ``runtime`` (which takes
    ``fmt`` files) can be asked to load with ``shapes``; the others are refused. ``shapes`` must name inputs these
    models have. A file with the content of an earlier one is added to ``same`` with that model, not opened twice."""
    opened: list[ModelFile] = []
    for path in _model_files(paths, on_refused):
        try:
            model = ModelFile.open(path)
        except LatbenchError as exc:
            _refuse(on_refused, str(path), one_line(exc))
            continue
        if (why := format_refusal(model, runtime, fmt)) is not None:
            _refuse(on_refused, str(path), why)
            continue
        kept = next((m for m in opened if m.sha256 == model.sha256), None)
        if kept is None:
            opened.append(model)
        elif kept.path.resolve() != model.path.resolve():
            same.append((model.path, kept))
    check_input_names(opened, shapes)
    fit: list[ModelFile] = []
    for model in opened:
        try:
            model.input_shapes(shapes)  # refused before anything is timed; an engine checks LiteRT files at load
        except ModelInputError as exc:
            _refuse(on_refused, str(model.path), one_line(exc))
            continue
        fit.append(model)
    return fit


def _labels(opened: Sequence[ModelFile], rows: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Each model's ``arch``: its file name, or ``name@<hash prefix>`` where another model of the run or of the
    results file has that name."""
    names = Counter(m.name for m in opened)
    holder = {str(r["arch"]): r["artifact_sha256"] for r in rows}
    return {
        m.sha256: m.name
        if names[m.name] == 1 and holder.get(m.name, m.sha256) == m.sha256
        else f"{m.name}@{m.sha256[:8]}"
        for m in opened
    }


def _already_measured(
    model: ModelFile, shapes: Mapping[str, tuple[int, ...]], fed: str, rows: Sequence[Mapping[str, object]]
) -> dict[str, object] | None:
    """The row of ``model`` timed with the given ``shapes`` on the input data ``fed`` describes (by content, not
    name), if ``rows`` hold one; a row without ``input_data`` was timed on random data of seed 0."""
    for row in rows:
        recorded = _recorded_shapes(row)
        if (
            row["artifact_sha256"] == model.sha256
            and all(recorded[n] == s for n, s in shapes.items() if n in recorded)
            and str(row.get("input_data") or random_description(0)) == fed
        ):
            return dict(row)
    return None


def _fed(
    opened: list[ModelFile], data: InputData | None, progress: Progress | None, on_refused: Refused
) -> list[ModelFile]:
    """The models ``data`` has an array for every input of (all of them without ``data``; the others refused).
    Without ``data``, a model with control flow is named: random data picks its branch or trip count."""
    fed: list[ModelFile] = []
    for model in opened:
        if data is None and model.control_flow:
            line = (
                f"{model.name}: holds control flow ({', '.join(model.control_flow)}), so its latency may depend on its "
                "input values, and it is timed on random ones: give representative inputs with --input-data FILE.npz"
            )
            _tell(progress, line, stacklevel=4)
        try:
            if data is not None and model.input_names is not None:
                data.check_covers(str(model.path), model.input_names)
        except ModelInputError as exc:
            _refuse(on_refused, str(model.path), one_line(exc))
            continue
        fed.append(model)
    return fed


def measure_models(
    paths: Sequence[str | Path],
    inputs: Mapping[str, Sequence[int]] | Sequence[str] | None,
    runtime: str,
    provider: str,
    threads: int,
    settings: TimingSettings | None,
    out: str | Path | None,
    cache_dir: str | Path | None,
    reference: bool,
    progress: Progress | None,
    on_result: Callable[[dict[str, object]], None] | None,
    on_refused: Refused,
    quiet: QuietPolicy | None,
    input_data: str | Path | None = None,
    remote: RemoteRunner | None = None,
) -> list[dict[str, object]]:
    """Time each model file as it is: a file is known by its content hash (its ``arch`` is its file name,
    made unique), and one that cannot be inspected, loaded or run is refused on its own."""
    from latbench.artifacts import ArtifactCache

    settings = settings or TimingSettings()
    if not paths:
        raise LatbenchError("give at least one model file")
    if isinstance(inputs, Mapping):
        shapes = {name: tuple(int(d) for d in dims) for name, dims in inputs.items()}
    else:
        shapes = parse_input_shapes([inputs] if isinstance(inputs, str) else list(inputs or []))
    data = InputData.open(input_data) if input_data is not None else None
    shapes = data.shapes_with(shapes) if data is not None else shapes
    fed = data.describe() if data is not None else random_description(0)
    runtime_cls = get_runtime(runtime)
    if runtime_cls.artifact_format not in FORMATS:
        raise LatbenchError(
            f"runtime {runtime} times latbench's own {runtime_cls.artifact_format} artifacts, not model files; "
            "measure ONNX files with onnxruntime or tvm and .tflite files with tflite"
        )
    bench, run_settings = record.open_bench(runtime_cls, threads, provider, settings, reference, quiet, remote)
    fmt = bench.artifact_format(DEFAULT_PRECISION)
    same: list[tuple[Path, ModelFile]] = []
    opened = _fed(_open_models(paths, runtime, fmt, shapes, on_refused, same), data, progress, on_refused)
    identity: dict[str, object] = {
        "space": MODEL_SET,
        "runtime": runtime,
        "provider": provider,
        "threads": threads,
        "device_id": bench.info.fingerprint(),
        **run_settings,
    }
    results = record.results_file(out, identity)
    earlier = results.rows if results is not None else []
    label = _labels(opened, earlier)
    for path, kept in same:
        if kept.sha256 in label:
            line = f"{path.name}: the same file as {kept.path.name}, measured once as {label[kept.sha256]}"
            _tell(progress, line, stacklevel=3)
    rows = {m.sha256: row for m in opened if (row := _already_measured(m, shapes, fed, earlier)) is not None}
    todo = [m for m in opened if m.sha256 not in rows]
    notify(progress, "measure", len(rows), len(opened))
    try:
        if todo:
            bench.calibrate(ArtifactCache(Path(cache_dir) if cache_dir else None), fmt)
        for model in todo:
            try:
                t = bench.time(model.path, shapes, data.arrays if data is not None else None)
            except CannotTime as exc:  # refused on its own, untimed
                _refuse(on_refused, str(model.path), str(exc))
                continue
            used = format_shapes(t.input_shapes)
            subject = {
                "arch": label[model.sha256],
                "arch_index": None,
                "space": MODEL_SET,
                "batch": model_batch(used),
                "resolution": None,
                "classes": None,
                "opset": model.opset,
                "input_shapes": used,
                "input_data": fed,
            }
            row = record.row_of(subject, model.sha256, t.engine, identity, bench.info, settings, t.measurement,
                              t.numpy_version)  # fmt: skip
            record.keep(results, identity, row)
            rows[model.sha256] = row
            notify(progress, "measure", len(rows), len(opened))
            if on_result:
                on_result(row)
    finally:
        bench.close()
    return [rows[m.sha256] for m in opened if m.sha256 in rows]
