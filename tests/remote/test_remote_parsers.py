"""The parsers read what the device tools print, in the formats their sources write (TFLite's benchmark_model
``Stat::OutputToStream`` and ``BenchmarkLoggingListener``; ONNX Runtime's ``PerformanceRunner`` and
``PerformanceResult::DumpToFile``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latbench.agents.remote.parse import (
    RESULT_MARKER,
    parse_benchmark_model,
    parse_perf_test_summary,
    parse_perf_test_times,
    parse_stub,
)
from latbench.errors import RemoteError

BENCHMARK_MODEL = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [50]
INFO: Min runs duration (seconds): [1]
INFO: Num threads: [1]
INFO: Min warmup runs: [10]
INFO: Min warmup runs duration (seconds): [0.5]
INFO: Graph: [/data/local/tmp/latbench-3f2a9c0d11aa/5e1f.tflite]
INFO: #threads used for CPU inference: [1]
INFO: Loaded model /data/local/tmp/latbench-3f2a9c0d11aa/5e1f.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: XNNPACK delegate created.
INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.
INFO: The input model file size (MB): 0.412588
INFO: Initialized session in 8.121ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=391 first=2604 curr=1236 min=1201 max=2604 avg=1277.37 std=112

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=784 first=1263 curr=1254 min=1198 max=1876 avg=1272.99 std=58

INFO: Inference timings in us: Init: 8121, First inference: 2604, Warmup (avg): 1277.37, Inference (avg): 1272.99
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the \
actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=3.17969 overall=9.66016
"""

BENCHMARK_MODEL_OLD = """\
STARTING!
Num runs: [50]
Graph: [/data/local/tmp/mobilenet.tflite]
Loaded model /data/local/tmp/mobilenet.tflite
Initialized session in 2.317ms
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=12 curr=41672(all same)

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=41802 curr=41311 min=40987 max=45321 avg=41655.4 std=702

Inference timings in us: Init: 2317, First inference: 44012, Warmup (avg): 41672, Inference (avg): 41655.4
"""

PERF_TEST_STDOUT = f"""\
Session creation time cost: 0.0213562 s
First inference time cost: 2 ms
Total inference time cost: 1.00071 s
Total inference requests: 4
Average inference time cost: 250.178 ms
Total inference run time: 1.00093 s
Number of inferences per second: 3.99628{" "}
Avg CPU usage: 98 %
Peak working set size: 41848832 bytes
Min Latency: 0.248 s
Max Latency: 0.2531 s
P50 Latency: 0.2502 s
P90 Latency: 0.2531 s
P95 Latency: 0.2531 s
P99 Latency: 0.2531 s
P999 Latency: 0.2531 s
"""

PERF_TEST_RESULT_FILE = """\
model,0.2502,41848832,98,0
model,0.248,41848832,98,1
model,0.2494,41848832,98,2
model,0.2531,41848832,98,3

Min Latency: 0.248 s
Max Latency: 0.2531 s
P50 Latency: 0.2502 s
P90 Latency: 0.2531 s
P95 Latency: 0.2531 s
P99 Latency: 0.2531 s
P999 Latency: 0.2531 s
"""


def test_benchmark_model_timed_loop_is_the_last_stat_line_in_milliseconds():
    report = parse_benchmark_model(BENCHMARK_MODEL)
    assert report.warmup is not None and report.warmup.count == 391
    timed = report.timed
    assert (timed.count, timed.min_ms, timed.max_ms) == (784, 1.198, 1.876)
    assert timed.mean_ms == pytest.approx(1.27299) and timed.std_ms == pytest.approx(0.058)
    stats = timed.latency_stats()
    assert stats.runs == 784 and stats.median_ms == pytest.approx(1.27299)  # no median printed: the mean
    assert stats.p99_ms == stats.max_ms == 1.876 and stats.cv == pytest.approx(0.058 / 1.27299)


def test_benchmark_model_without_log_prefix_and_an_all_same_warmup():
    report = parse_benchmark_model(BENCHMARK_MODEL_OLD)
    assert report.warmup is not None and report.warmup.count == 12 and report.warmup.std_ms == 0.0
    assert report.timed.count == 50 and report.timed.mean_ms == pytest.approx(41.6554)


def test_benchmark_model_failure_is_a_clear_error_with_the_tool_output():
    output = "INFO: STARTING!\nERROR: Could not open '/data/local/tmp/x.tflite'.\nERROR: Model file doesn't exist\n"
    with pytest.raises(RemoteError, match=r"no timing statistics.*Model file doesn't exist"):
        parse_benchmark_model(output)


def test_perf_test_summary_in_milliseconds():
    summary = parse_perf_test_summary(PERF_TEST_STDOUT)
    assert summary.count == 4
    assert summary.mean_ms == pytest.approx(250.178)
    assert (summary.min_ms, summary.max_ms) == (pytest.approx(248.0), pytest.approx(253.1))
    assert summary.median_ms == pytest.approx(250.2) and summary.p99_ms == pytest.approx(253.1)


def test_perf_test_result_file_gives_every_run_and_skips_its_summary():
    times = parse_perf_test_times(PERF_TEST_RESULT_FILE)
    assert times.dtype == np.int64
    assert times.tolist() == [250_200_000, 248_000_000, 249_400_000, 253_100_000]


def test_perf_test_model_names_with_commas_survive():
    assert parse_perf_test_times("my,model,0.001,100,50,0\n").tolist() == [1_000_000]


def test_perf_test_without_results_is_a_clear_error():
    with pytest.raises(RemoteError, match="no latency summary"):
        parse_perf_test_summary("failed to initialize.\n")
    with pytest.raises(RemoteError, match="no per-run times"):
        parse_perf_test_times("")


def test_stub_result_is_the_last_marker_line_and_its_error_is_raised():
    assert parse_stub(f"warning: x\n{RESULT_MARKER}{json.dumps({'a': 1})}\n") == {"a": 1}
    with pytest.raises(RemoteError, match="on the device: onnxruntime cannot load"):
        parse_stub(f"{RESULT_MARKER}{json.dumps({'error': 'onnxruntime cannot load /tmp/x.onnx'})}\n")
    with pytest.raises(RemoteError, match=r"^python3 on the device has no numpy, which the latbench stub needs"):
        parse_stub("Traceback (most recent call last):\nModuleNotFoundError: No module named 'numpy'\n")
    with pytest.raises(RemoteError, match=r"printed no result.*SyntaxError: bad"):
        parse_stub("Traceback (most recent call last):\nSyntaxError: bad\n")
