"""GPU / CPU / RAM sampling: nvidia-smi CSV, the choice of sampler, the process tree, the standalone module."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platform_core.monitor import sampling
from platform_core.monitor.sampling import (
    ProcessTreeSampler,
    parse_nvidia_smi_csv,
    sample_gpus_nvidia_smi,
    sample_memory,
    sample_system,
)

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia_smi"
BUSY = "import subprocess, sys; c = subprocess.Popen([sys.executable, '-c', 'x = bytearray(8 << 20)\\nwhile True: pass']); c.wait()"


def test_parse_one_gpu():
    (gpu,) = parse_nvidia_smi_csv((FIXTURES / "h100_1gpu.csv").read_text())
    assert gpu == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "util": 97.0,
        "mem_used_mib": 71234.0,
        "mem_total_mib": 81559.0,
        "temp_c": 64.0,
        "power_w": 512.34,
    }


def test_parse_eight_gpus_with_unsupported_values():
    gpus = parse_nvidia_smi_csv((FIXTURES / "a100_8gpu.csv").read_text())
    assert [g["index"] for g in gpus] == list(range(8))
    assert gpus[5]["power_w"] is None and gpus[5]["util"] == 0.0  # "[N/A]"
    assert gpus[7]["util"] is None and gpus[7]["power_w"] is None  # "[Not Supported]"
    assert gpus[7]["mem_used_mib"] == 78912.0 and all(g["mem_total_mib"] == 81920.0 for g in gpus)
    json.dumps(gpus, allow_nan=False)


def test_parse_driver_failure_gives_no_gpu():
    assert parse_nvidia_smi_csv((FIXTURES / "driver_failed.txt").read_text()) == []


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An `nvidia-smi` executable on PATH that answers the query with a captured CSV."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *"--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"*'
        '"--format=csv,noheader,nounits"*) ;; *) echo "unexpected arguments: $*" >&2; exit 2;; esac\n'
        f'cat "{FIXTURES / "a100_8gpu.csv"}"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return script


def test_nvidia_smi_subprocess(fake_nvidia_smi):
    gpus = sample_gpus_nvidia_smi()
    assert len(gpus) == 8 and gpus[0]["name"] == "NVIDIA A100-SXM4-80GB"


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a real GPU")
def test_sample_system_falls_back_from_nvml_to_nvidia_smi(fake_nvidia_smi):
    sample = sample_system([os.getpid()], gpu_indices=[0, 7])
    assert sample["gpu_source"] == "nvidia-smi" and [g["index"] for g in sample["gpus"]] == [0, 7]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a real GPU")
def test_sample_system_without_gpu():
    sample = sample_system([os.getpid()])
    assert sample["gpus"] == [] and sample["gpu_source"] is None
    assert sample["rss_mib"] > 10 and 0 < sample["ram_used_mib"] < sample["ram_total_mib"]
    assert abs(sample["time"] - time.time()) < 5
    json.dumps(sample, allow_nan=False)


def test_process_tree_cpu_and_memory_include_children():
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        tree = ProcessTreeSampler()
        time.sleep(0.3)  # the grandchild starts
        tree.sample([proc.pid])
        time.sleep(0.5)
        second = tree.sample([proc.pid])
        assert second["cpu_percent"] > 10  # the busy grandchild, measured between the two samples
        assert second["rss_mib"] > 8
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["pkill", "-P", str(proc.pid)], check=False)
    assert ProcessTreeSampler().sample([proc.pid]) == {"cpu_percent": None, "rss_mib": None}
    assert ProcessTreeSampler().sample([]) == {"cpu_percent": None, "rss_mib": None}


def test_proc_fallback_without_psutil(monkeypatch):
    monkeypatch.setattr(sampling, "psutil", None)
    tree = ProcessTreeSampler()
    first = tree.sample([os.getpid()])
    assert first["rss_mib"] > 10 and first["cpu_percent"] == 0.0
    sum(i * i for i in range(300_000))
    assert tree.sample([os.getpid()])["cpu_percent"] >= 0
    memory = sample_memory()
    assert 0 < memory["ram_used_mib"] < memory["ram_total_mib"]


def test_module_imports_only_the_standard_library():
    tree = ast.parse(Path(sampling.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    optional = {"psutil", "pynvml"}
    assert imported - optional <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_module_runs_standalone_next_to_a_remote_run(tmp_path):
    """Copied alone (no platform_core, no psutil, no pynvml), the sampler still writes samples."""
    shutil.copy(sampling.__file__, tmp_path / "sampling.py")
    code = (
        "import sys; sys.modules['psutil'] = None; sys.modules['pynvml'] = None\n"
        "import sampling, json\n"
        f"sampling.run_sampler({str(tmp_path / 'system.jsonl')!r}, [{os.getpid()}], interval=0.05, max_samples=2)\n"
    )
    done = subprocess.run([sys.executable, "-E", "-s", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    samples = [json.loads(line) for line in (tmp_path / "system.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and samples[1]["rss_mib"] > 0 and samples[0]["ram_total_mib"] > 0
    once = subprocess.run(
        [sys.executable, "-I", "sampling.py", "--out", "x", "--pid", str(os.getpid()), "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert once.returncode == 0 and "ram_total_mib" in json.loads(once.stdout)


@pytest.mark.gpu
def test_real_gpu_sampling():
    """On a GPU machine: NVML and nvidia-smi report the same GPUs with plausible values."""
    nvml = sampling.sample_gpus_nvml()
    smi = sample_gpus_nvidia_smi()
    assert nvml and smi and [g["index"] for g in nvml] == [g["index"] for g in smi]
    for a, b in zip(nvml, smi, strict=True):
        assert a["name"] == b["name"] and abs(a["mem_total_mib"] - b["mem_total_mib"]) < 64
        assert 0 <= a["util"] <= 100 and 0 < a["temp_c"] < 120
    sample = sample_system([os.getpid()])
    assert sample["gpu_source"] == "nvml" and len(sample["gpus"]) == len(smi)


def test_visible_gpu_indices_follow_cuda_rules():
    from platform_core.plugins.supervisor import visible_gpu_indices

    assert visible_gpu_indices(None) is None  # unset: every GPU of the machine
    assert visible_gpu_indices("") == [] and visible_gpu_indices(" ") == []  # CUDA sees no GPU
    assert visible_gpu_indices("3") == [3]
    assert visible_gpu_indices("0,2") == [0, 2] and visible_gpu_indices(" 1, 3 ") == [1, 3]
    assert visible_gpu_indices("0,-1,2") == [0]  # as in CUDA, the list ends at the first invalid entry
    assert visible_gpu_indices("-1") == []
    assert visible_gpu_indices("1,junk,2") == [1]
    assert visible_gpu_indices("GPU-8f3a1c2e-0000-1111-2222-333344445555") is None  # UUIDs: not matchable
    assert visible_gpu_indices("MIG-GPU-8f3a/1/0") is None


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a real GPU")
def test_supervisor_samples_only_the_runs_gpus(tmp_path, fake_nvidia_smi):
    """The real supervisor, copied next to a run as on a server, samples the GPUs of run.json's
    CUDA_VISIBLE_DEVICES (nvidia-smi answering for 8 GPUs), and all of them when the variable is unset."""
    from platform_core.plugins import supervisor

    kit = tmp_path / "kit"
    kit.mkdir()
    shutil.copy(supervisor.__file__, kit / "supervisor.py")
    shutil.copy(sampling.__file__, kit / "sampling.py")
    for name, env in (("two", {"CUDA_VISIBLE_DEVICES": "2,5"}), ("all", {})):
        run_dir = tmp_path / name
        run_dir.mkdir()
        spec = {
            "argv": [sys.executable, "-c", "import time; time.sleep(1.2)"],
            "env": env,
            "unset_env": ["CUDA_VISIBLE_DEVICES"] if not env else [],
            "sample_every": 0.2,
        }
        (run_dir / "run.json").write_text(json.dumps(spec))
        done = subprocess.run(
            [sys.executable, str(kit / "supervisor.py"), "--run-dir", str(run_dir)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        samples = [json.loads(line) for line in (run_dir / "system.jsonl").read_text().splitlines()]
        assert samples and all(s["gpu_source"] == "nvidia-smi" for s in samples)
        expected = [2, 5] if env else list(range(8))
        assert all([g["index"] for g in s["gpus"]] == expected for s in samples), samples[0]["gpus"]
