"""Apache TVM (Relax): compiles each ONNX artifact for this machine's own CPU, then runs it in the Relax VM.

The compiled library is cached per artifact SHA-256 and target under the agent's cache
(``$LATBENCH_TVM_CACHE``, default ``~/.cache/latbench/tvm``), so a model is compiled once per machine. The
target is the host as LLVM sees it (triple and CPU, e.g. ``znver3``), as a dict: this TVM rejects string
targets with flags. Provider ``cpu`` compiles with TVM's default schedules; ``cpu-tuned`` tunes with
MetaSchedule first (``tuning_trials``), in a child process, because tuning segfaults in some TVM builds
(docs/tvm-metaschedule-crash.md) and a crash must become an error, not a dead agent. TVM takes seconds to
import, so nothing imports it before a runtime is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from latbench.agents.modelfile import InputSpec, model_inputs, resolve_shapes
from latbench.agents.runtimes.base import Runtime, importable
from latbench.errors import MissingDependency, RuntimeUnavailable
from latbench.hashing import sha256_file
from latbench.profiles import OpProfile, OpTime, op_type

PROVIDERS = ("cpu", "cpu-tuned")
CACHE_ENV = "LATBENCH_TVM_CACHE"
DEFAULT_TRIALS = 64
TUNE_TIMEOUT_S = 3600.0
Shapes = dict[str, list[int]]
"""Input name -> concrete shape, for models with dynamic dimensions."""
BIG_CORES = 1
"""TVM's thread-pool affinity mode ``kBig``: on a CPU with one kind of core, all of them."""


def _tvm() -> Any:
    try:
        import tvm
        from tvm import relax  # noqa: F401  (loads tvm.relax for the caller)
    except ImportError:
        raise MissingDependency("apache-tvm", "tvm", "the tvm runtime") from None
    return tvm


def host_target(threads: int) -> dict[str, object]:
    """This CPU as an LLVM target dict (triple, CPU name), with ``num-cores`` = the threads to run with."""
    from tvm.target import codegen

    return {
        "kind": "llvm",
        "mtriple": str(codegen.llvm_get_system_triple()),
        "mcpu": str(codegen.llvm_get_system_cpu()),
        "num-cores": threads,
    }


def default_cache() -> Path:
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "latbench" / "tvm"


class TvmRuntime(Runtime):
    name: ClassVar[str] = "tvm"
    artifact_format: ClassVar[str] = "onnx"

    def __init__(
        self,
        threads: int = 1,
        provider: str = "cpu",
        tuning_trials: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__(threads, provider)
        if provider not in PROVIDERS:
            raise RuntimeUnavailable(f"unknown tvm provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")
        if tuning_trials is not None and tuning_trials < 0:
            raise ValueError(f"tuning_trials must not be negative, got {tuning_trials}")
        self.tuning_trials = (
            (DEFAULT_TRIALS if provider == "cpu-tuned" else 0) if tuning_trials is None else tuning_trials
        )
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache()
        os.environ["TVM_NUM_THREADS"] = str(threads)  # read when TVM's thread pool starts
        self._tvm = _tvm()
        self._tvm.get_global_func("runtime.config_threadpool")(BIG_CORES, threads)  # and if it already has
        self.target = host_target(threads)
        self._vm: Any = None
        self._inputs: list[Any] = []
        self.library: Path | None = None

    @classmethod
    def version(cls) -> str:
        if not importable("tvm"):
            raise MissingDependency("apache-tvm", "tvm", "the tvm runtime")
        try:
            return package_version("apache-tvm")
        except PackageNotFoundError:
            raise MissingDependency("apache-tvm", "tvm", "the tvm runtime") from None

    @classmethod
    def providers(cls) -> list[str]:
        cls.version()
        return list(PROVIDERS)

    def settings(self) -> dict[str, object]:
        return {**super().settings(), "target": self.target, "tuning_trials": self.tuning_trials}

    def _library_path(self, artifact_sha256: str, shapes: Shapes | None) -> Path:
        fields: dict[str, object] = {"target": self.target, "trials": self.tuning_trials, "tvm": self.version()}
        if shapes is not None:
            fields["shapes"] = shapes
        options = json.dumps(fields, sort_keys=True)
        return self.cache_dir / f"{artifact_sha256}-{hashlib.sha256(options.encode()).hexdigest()[:16]}.so"

    def compiled(self, path: Path, shapes: Shapes | None = None) -> Path:
        """The compiled library of the ONNX model at ``path`` for this target, compiling it if not cached;
        ``shapes`` fix the model's dynamic dimensions (and are part of the cache key)."""
        library = self._library_path(sha256_file(path), shapes)
        if library.is_file():
            return library
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{library.stem}.", suffix=".so")
        os.close(fd)
        staged = Path(name)
        try:
            if self.tuning_trials:
                tune_in_child(path, staged, self.target, self.tuning_trials, shapes)
            else:
                compile_onnx(path, staged, self.target, shapes)
            os.replace(staged, library)
        finally:
            staged.unlink(missing_ok=True)
        return library

    def load(
        self,
        path: Path,
        seed: int = 0,
        input_shapes: Mapping[str, Sequence[int]] | None = None,
        input_data: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.close()
        tvm = self._tvm
        specs = _input_specs(path)
        shapes = resolve_shapes(path.name, specs, input_shapes)
        dynamic = any(not isinstance(d, int) for spec in specs for d in spec.dims)
        self.library = self.compiled(path, {k: list(v) for k, v in shapes.items()} if dynamic else None)
        vm = tvm.relax.VirtualMachine(tvm.runtime.load_module(str(self.library)), tvm.cpu())
        self._inputs = [
            tvm.runtime.tensor(x, tvm.cpu()) for x in model_inputs(path.name, specs, shapes, seed, input_data).values()
        ]
        vm.set_input("main", *self._inputs)
        self._vm, self.input_shapes = vm, shapes

    def _require(self) -> Any:
        if self._vm is None:
            raise RuntimeError("no model loaded: call load() first")
        return self._vm

    def run(self) -> None:
        self._require().invoke_stateful("main")

    def profile(self, runs: int = 10, warmup: int = 3) -> OpProfile:
        """Each compiled kernel's time, read by a VM instrument (TVM's debug hook, called around every call) on a
        second VM of the same library: the timed VM never carries the hook. The VM's own builtins (allocation,
        shape checks) are left out."""
        self._require()
        tvm = self._tvm
        vm = tvm.relax.VirtualMachine(tvm.runtime.load_module(str(self.library)), tvm.cpu())
        vm.set_input("main", *self._inputs)
        for _ in range(warmup):
            vm.invoke_stateful("main")
        started: list[int] = []
        totals: dict[str, list[int]] = {}

        def instrument(func: object, symbol: str, before: bool, ret: object, *args: object) -> int:
            if before:
                started.append(time.perf_counter_ns())
            else:
                entry = totals.setdefault(str(symbol), [0, 0])
                entry[0] += time.perf_counter_ns() - started.pop()
                entry[1] += 1
            return 0

        vm.set_instrument(instrument)
        for _ in range(runs):
            vm.invoke_stateful("main")
        ops = [
            OpTime(symbol, op_type(symbol), round(ns / 1e6 / runs, 6), max(1, calls // runs))
            for symbol, (ns, calls) in totals.items()
            if not symbol.startswith("vm.")
        ]
        return OpProfile(self.name, self.provider, runs, ops)

    def infer(self, inputs: np.ndarray) -> np.ndarray:
        vm = self._require()
        out = vm["main"](self._tvm.runtime.tensor(np.ascontiguousarray(inputs, dtype=np.float32), self._tvm.cpu()))
        vm.set_input("main", *self._inputs)
        return np.asarray(out.numpy())

    def close(self) -> None:
        self._vm = None
        self._inputs = []


def _input_specs(path: Path) -> list[InputSpec]:
    """The graph inputs of the ONNX model at ``path`` that are not initializers, as the Relax frontend takes them."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for unreadable files
        raise RuntimeUnavailable(f"tvm cannot load {path}: {exc}") from exc
    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for i in model.graph.input:
        if i.name in initializers:
            continue
        tensor = i.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
        specs.append(InputSpec(i.name, dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))))
    return specs


def _relax_module(path: Path, shapes: Shapes | None = None) -> Any:
    import onnx
    from tvm.relax.frontend import onnx as relax_onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for unreadable files
        raise RuntimeUnavailable(f"tvm cannot load {path}: {exc}") from exc
    static = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    try:
        return relax_onnx.from_onnx(model, shape_dict={**static, **(shapes or {})}, keep_params_in_input=False)
    except Exception as exc:  # the frontend raises TVM's own errors (e.g. OpNotImplemented) for what it cannot take
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeUnavailable(f"tvm cannot import {path.name}: {first}") from exc


def compile_onnx(path: Path, library: Path, target: dict[str, object], shapes: Shapes | None = None) -> None:
    """Compile the ONNX model at ``path`` for ``target`` (untuned) into the shared library ``library``."""
    tvm = _tvm()
    tvm.compile(_relax_module(path, shapes), target=tvm.target.Target(target)).export_library(str(library))


def tune_onnx(
    path: Path, library: Path, target: dict[str, object], trials: int, work_dir: Path, shapes: Shapes | None = None
) -> None:
    """Tune with MetaSchedule (``trials`` in all, its logs and records in ``work_dir``), then compile into
    ``library``; run it in a child process."""
    tvm = _tvm()
    t = tvm.target.Target(target)
    mod = tvm.relax.pipeline.static_shape_tuning_pipeline(
        total_trials=trials, target=t, work_dir=str(work_dir), max_trials_per_task=max(1, trials // 8)
    )(_relax_module(path, shapes))
    tvm.compile(mod, target=t).export_library(str(library))


def tune_in_child(
    path: Path, library: Path, target: dict[str, object], trials: int, shapes: Shapes | None = None
) -> None:
    """``tune_onnx`` in a child process: a crash (TVM's tuner segfaults in some builds) becomes a clear error. The
    tuning work dir is made and removed here, as a dead child cannot remove it."""
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    job = {"path": str(path), "library": str(library), "target": target, "trials": trials, "shapes": shapes}
    with tempfile.TemporaryDirectory(prefix="latbench-tune-", ignore_cleanup_errors=True) as work_dir:
        argv = [sys.executable, "-m", "latbench.agents.runtimes.tvm", json.dumps({**job, "work_dir": work_dir})]
        run_child(argv, env, f"tvm MetaSchedule tuning of {path.name}")


def run_child(argv: list[str], env: dict[str, str] | None, what: str, timeout_s: float = TUNE_TIMEOUT_S) -> None:
    """Run ``argv``; a crash, failure or timeout becomes one ``RuntimeUnavailable`` line saying which."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RuntimeUnavailable(f"{what} took over {timeout_s:.0f} s") from None
    if done.returncode == 0:
        return
    if done.returncode < 0:
        how = f"crashed with signal {-done.returncode}"
        if "ToJSONGraph" in done.stderr:
            how += " in tvm::ffi::ToJSONGraph (a known TVM bug: docs/tvm-metaschedule-crash.md)"
    else:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        how = f"failed: {lines[-1] if lines else f'exit status {done.returncode}'}"
    raise RuntimeUnavailable(f"{what} {how}; use provider 'cpu' to run untuned")


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    tune_onnx(
        Path(job["path"]), Path(job["library"]), job["target"], int(job["trials"]), Path(job["work_dir"]), job["shapes"]
    )
