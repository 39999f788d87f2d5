"""Log levels on real verl / torchrun / Ray output, search and highlighting, live tail, download, the first error."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from platform_core.errors import InvalidInput
from platform_core.monitor.files import LocalFiles
from platform_core.monitor.logs import (
    LevelClassifier,
    LogTail,
    classify_lines,
    display_text,
    find_first_error,
    first_error_in_file,
    highlight_html,
    log_download,
    render_log_html,
    search_file,
    search_lines,
    tail_lines,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _levels(lines):
    return dict(zip((display_text(line) for line in lines), classify_lines(lines), strict=True))


def test_levels_on_a_real_verl_log():
    lines = (FIXTURES / "verl_sft" / "attempt-2" / "stdout.log").read_text(encoding="utf-8").split("\n")
    levels = classify_lines(lines)
    by_text = {display_text(line): level for line, level in zip(lines, levels, strict=True)}
    warning = next(t for t in by_text if "UserWarning: torchtitan engine is not available" in t)
    assert by_text[warning] == "WARNING"
    # the source line Python prints under a warning belongs to it
    source = lines.index(next(line for line in lines if "UserWarning: torchtitan" in line)) + 1
    assert levels[source] == "WARNING" and lines[source].startswith("  warnings.warn")
    assert (
        by_text[
            "Warning: Failed to set NUMA affinity: libnuma.so: cannot open shared object file: No such file or directory"
        ]
        == "WARNING"
    )
    glog = next(t for t in by_text if t.startswith("[rank1]:W1126"))
    assert by_text[glog] == "WARNING"
    verl_info = next(t for t in by_text if "[INFO] - [Rank 0] Loaded model" in t)
    assert by_text[verl_info] == "INFO"
    assert by_text[next(t for t in by_text if t.startswith("INFO:"))] == "INFO"
    steps = [line for line in lines if "step:6 - " in line]
    assert steps and all(level == "INFO" for line, level in zip(lines, levels, strict=True) if line in steps)
    assert "ERROR" not in levels  # a clean run


def test_levels_on_real_torchrun_output(log_fixture):
    lines = log_fixture("torchrun_fail.log")
    levels = classify_lines(lines)
    counts = Counter(levels)
    assert counts["ERROR"] > 30 and counts["WARNING"] >= 5
    text = [display_text(line) for line in lines]
    assert levels[next(i for i, t in enumerate(text) if t.startswith("E1126"))] == "ERROR"
    assert levels[next(i for i, t in enumerate(text) if t.startswith("W1126"))] == "WARNING"
    first_tb = text.index("Traceback (most recent call last):")
    assert set(levels[first_tb : first_tb + 6]) == {"ERROR"}  # frames inherit the block's level
    assert levels[text.index("fail_train.py FAILED")] == "ERROR"  # torchrun's ChildFailedError report
    assert levels[next(i for i, t in enumerate(text) if t.startswith("Root Cause"))] == "ERROR"
    assert levels[next(i for i, t in enumerate(text) if t.startswith("step:2"))] == "INFO"


def test_levels_on_ray_output(log_fixture):
    levels = _levels(log_fixture("ray_ppo_oom.log"))
    assert (
        levels[
            "2026-11-26 10:02:11,482\tINFO worker.py:1917 -- Started a local Ray instance. View the dashboard at 127.0.0.1:8265 "
        ]
        == "INFO"
    )
    by_start = {text[:60]: level for text, level in levels.items()}
    assert by_start["(WorkerDict pid=17002, ip=10.0.0.2) WARNING 11-26 10:03:02 [config.py:1474] "[:60]] == "WARNING"
    assert by_start["(WorkerDict pid=17003, ip=10.0.0.2) [W1126 10:04:10.123456789 ProcessGroupNC"[:60]] == "WARNING"
    assert by_start["(raylet) [2026-11-26 10:05:41,002 E 16650 16650] (raylet) node_manager.c"[:60]] == "ERROR"
    assert by_start["(WorkerDict pid=17002, ip=10.0.0.2)     loss.backward()"[:60]] == "ERROR"
    assert by_start["ray.exceptions.RayTaskError(OutOfMemoryError): ray::TaskRunnerV1.run() (pid="[:60]] == "ERROR"
    assert by_start["Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."[:60]] == "INFO"


def test_interleaved_processes_keep_their_own_blocks():
    classifier = LevelClassifier()
    lines = [
        "(A pid=1) Traceback (most recent call last):",
        "(B pid=2) step:3 - loss:1.0",
        '(A pid=1)   File "x.py", line 1, in <module>',
        "(B pid=2)   indented output of B",
        "(A pid=1) KeyError: 'x'",
    ]
    assert [classifier.classify(line) for line in lines] == ["ERROR", "INFO", "ERROR", "INFO", "ERROR"]


def test_python_logging_formats():
    classify = LevelClassifier().classify
    assert classify("DEBUG:urllib3.connectionpool:Starting new HTTPS connection") == "DEBUG"
    assert classify("2026-11-26 09:00:00,123 - trainer - WARNING - lr is high") == "WARNING"
    assert classify("2026-11-26 09:00:00,123 - trainer - ERROR - cannot save") == "ERROR"
    assert classify("CRITICAL:root:disk full") == "ERROR"
    assert classify("[2026-11-26 09:00:00,000][verl][WARNING] - slow step") == "WARNING"
    assert classify("INFO 11-26 10:03:05 [model_runner.py:1110] Loading model weights took 14.99 GB") == "INFO"
    assert classify("Epoch 1/2:  50%|█████     | 3/6 [00:01<00:01,  2.09it/s]") == "INFO"


def test_search_highlight_and_escaping():
    lines = ["step:1 - loss:<b>1.0</b>", "ERROR: CUDA out of memory", "nothing"]
    assert [i for i, _s in search_lines(lines, "cuda")] == [1]
    hits = search_lines(lines, r"loss:\S+", regex=True)
    assert hits == [(0, [(9, 24)])]
    html = highlight_html(lines[0], hits[0][1])
    assert html == "step:1 - <mark>loss:&lt;b&gt;1.0&lt;/b&gt;</mark>"
    assert search_lines(lines, "CUDA", case_sensitive=True)[0][0] == 1
    assert len(search_lines(lines, "")) == 3
    with pytest.raises(InvalidInput, match="not a valid regular expression"):
        search_lines(lines, "([", regex=True)
    page = render_log_html([("<script>alert(1)</script>", "ERROR")], {0: [(1, 7)]})
    assert "<script>" not in page and "&lt;<mark>script</mark>&gt;" in page


def test_search_the_whole_file_in_chunks(tmp_path):
    path = tmp_path / "stdout.log"
    lines = [f"step:{i} - train/loss:{1 / i:.4f}" for i in range(1, 50_001)] + ["\x1b[31mERROR: last line, no newline"]
    path.write_text("\n".join(lines))
    hits = search_file(LocalFiles(), str(path), r"step:4999\d ", regex=True, chunk=64 * 1024)
    assert [number for number, _t, _s in hits] == list(range(49990, 50000))
    assert hits[0][1][hits[0][2][0][0] : hits[0][2][0][1]] == "step:49990 "
    last = search_file(LocalFiles(), str(path), "error: last")
    assert last == [(50001, "ERROR: last line, no newline", [(0, 11)])]
    assert len(search_file(LocalFiles(), str(path), "step", max_hits=5)) == 5
    assert search_file(LocalFiles(), str(path), "") == []


def test_log_tail_follows_a_growing_log(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("\x1b[36m(TaskRunner pid=1)\x1b[0m starting\n")
    tail = LogTail(LocalFiles(), str(path), max_lines=3)
    tail.poll()
    assert [e.text for e in tail.entries] == ["(TaskRunner pid=1) starting"]
    with open(path, "a") as out:
        out.write('Traceback (most recent call last):\n  File "a.py", line 1\nValueError: x\n')
    tail.poll()
    assert [e.level for e in tail.entries] == ["ERROR", "ERROR", "ERROR"]  # only the last 3 kept
    assert [e.text for e in tail.lines(["INFO"])] == []
    path.write_text("restarted\n")
    tail.poll()
    assert [e.text for e in tail.entries] == ["restarted"] and tail.restarts == ["truncated"]


def test_tail_of_a_file_reads_only_its_end(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail_lines(LocalFiles(), str(path), 3, max_bytes=200) == ["line 99997", "line 99998", "line 99999"]
    assert tail_lines(LocalFiles(), str(tmp_path / "none.log")) == []


def test_download_small_as_is_and_large_gzipped(tmp_path):
    path = tmp_path / "stdout.log"
    content = "".join(f"step:{i} - train/loss:{1 / (i + 1)}\n" for i in range(20_000)).encode()
    path.write_bytes(content)
    small = log_download(LocalFiles(), str(path))
    assert small.file_name == "stdout.log" and not small.compressed and small.make() == content
    assert small.local_path == str(path) and small.size == len(content)
    big = log_download(LocalFiles(), str(path), gzip_over=1024)
    assert big.file_name == "stdout.log.gz" and big.mime == "application/gzip"
    packed = big.make()
    assert len(packed) < len(content) / 3 and gzip.decompress(packed) == content
    assert log_download(LocalFiles(), str(tmp_path / "missing.log")) is None


def test_first_error_of_a_real_failing_python_process(tmp_path):
    script = (
        "import sys\n"
        "for step in range(1, 4):\n"
        "    print(f'step:{step} - train/loss:{1/step}', flush=True)\n"
        "try:\n"
        "    {}['messages']\n"
        "except KeyError as exc:\n"
        "    raise RuntimeError('dataset row 17 has no messages') from exc\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1
    log = tmp_path / "stdout.log"
    log.write_text(done.stdout + done.stderr)
    report = first_error_in_file(LocalFiles(), str(log))
    assert report.kind == "traceback" and report.exception == "RuntimeError"
    assert report.summary == "RuntimeError: dataset row 17 has no messages"
    assert report.lines[0] == "Traceback (most recent call last):"
    assert any(line.startswith("KeyError: 'messages'") for line in report.lines)  # the chained cause is kept
    assert any("The above exception was the direct cause" in line for line in report.lines)


def test_first_error_under_torchrun_is_the_failing_rank_not_the_launcher(log_fixture):
    for name in ("torchrun_fail.log", "torchrun_fail_tee.log"):
        report = find_first_error(log_fixture(name))
        assert report.kind == "traceback"
        assert report.summary == "ValueError: bad sample at index 17: 'messages' is missing"
        assert report.lines[-1] == report.summary and len(report.lines) == 6
        assert any("Root Cause (first observed failure):" in line for line in report.context)
        assert any("rank      : 1 (local_rank: 1)" in line for line in report.context)


def test_first_error_through_ray_is_the_nested_oom(log_fixture):
    report = find_first_error(log_fixture("ray_ppo_oom.log"))
    assert report.kind == "out_of_memory" and report.exception == "torch.OutOfMemoryError"
    assert report.summary.startswith("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB")
    assert any(line.startswith("ray.exceptions.RayTaskError(OutOfMemoryError)") for line in report.lines)
    assert report.lines[0] == "Traceback (most recent call last):"
    assert any("killed due to memory pressure (OOM)" in line for line in report.context)


def test_first_error_prefers_failures_after_the_last_step():
    lines = [
        "Traceback (most recent call last):",
        '  File "probe.py", line 3, in <module>',
        "ImportError: optional flash_attn missing",
        "step:1 - loss:1.0",
        "step:2 - loss:0.9",
        "[rank0]:[E ProcessGroupNCCL.cpp:616] Watchdog caught collective operation timeout",
        "Traceback (most recent call last):",
        '  File "train.py", line 9, in <module>',
        "torch.distributed.DistBackendError: NCCL communicator was aborted on rank 0",
        "Traceback (most recent call last):",
        '  File "train.py", line 20, in step',
        "AssertionError: reward shape mismatch",
    ]
    report = find_first_error(lines)
    assert report.summary == "AssertionError: reward shape mismatch"


def test_first_error_without_traceback():
    assert find_first_error(["step:1 - loss:1.0", "all good"]) is None
    killed = find_first_error(["step:1 - loss:1.0", "Killed"])
    assert killed.kind == "killed" and killed.summary == "Killed"
    oom = find_first_error(["step:1 - loss:1.0", "RuntimeError: CUDA error: out of memory"])
    assert oom.kind == "out_of_memory"
