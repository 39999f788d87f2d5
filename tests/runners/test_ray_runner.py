"""The Ray runner against a real local Ray cluster (`ray start --head`): the same supervised verl SFT run,
submitted through Ray's job API, watched and finished. A multi-node cluster cannot be reached here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import closed_port, wait_for

from platform_core import settings
from platform_core.jobs import service
from platform_core.jobs.service import load_spec_file

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def ray_cluster():
    import tempfile

    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    port, dashboard = closed_port(), closed_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    out = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            f"--port={port}",
            f"--dashboard-port={dashboard}",
            "--dashboard-host=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=true",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    address = f"http://127.0.0.1:{dashboard}"
    import urllib.request

    wait_for(lambda: _reachable(urllib.request, address), 120, 1, "the Ray dashboard")
    yield address
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)
    import shutil

    shutil.rmtree(temp, ignore_errors=True)


def _reachable(request, address: str) -> bool:
    try:
        with request.urlopen(f"{address}/api/version", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_sft_runs_as_a_ray_job(demo_platform, ray_cluster):
    settings.set_ray_address(demo_platform, ray_cluster)
    spec = load_spec_file(str(demo_platform.workspace.demo / "specs" / "sft.yaml"))
    spec.update(target="ray", total_steps=6, save_freq=3, name="ray sft")
    job_id = service.create_job(demo_platform, spec, start=True)
    run = demo_platform.store.get("runs", service.get_job(demo_platform, job_id)["current_run_id"])
    assert run["remote"]["submission_id"].startswith("platform-run-")
    wait_for(
        lambda: service.refresh_job(demo_platform, job_id)["state"] in service.FINAL_STATES,
        900,
        2,
        "the Ray job to finish",
    )
    job = service.get_job(demo_platform, job_id)
    assert job["state"] == "completed", job["error"]
    assert job["step"] == 6 and service.job_status(demo_platform, job_id)["checkpoints"] == [3, 6]
    from ray.job_submission import JobSubmissionClient

    status = JobSubmissionClient(ray_cluster).get_job_status(run["remote"]["submission_id"])
    assert str(status.value) == "SUCCEEDED"
