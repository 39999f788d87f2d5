"""Remote generation over SSH against the real sshd: genscript.py shipped to the server's work dir, run detached
there on the remote model, its output read back by byte offset, scored here."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from platform_core.connections import update_connection
from platform_core.evaluation.runs import create_run, get_run, load_samples, output_dir, start_run
from platform_core.runners.ssh import open_session
from platform_core.tasks import wait_task


def remote_python(platform, profile: str) -> str:
    """A Python for the test user: the system interpreter in a venv that sees this checkout's site-packages (the
    venv's own interpreter lives under /root, which other users cannot enter)."""
    site = sysconfig.get_paths()["purelib"]
    session = open_session(platform, profile)
    try:
        session.check(["/usr/bin/python3", "-m", "venv", "--without-pip", session.expand("~/evalpy")], "venv")
        version = session.check(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], "v")
        pth = session.expand(f"~/evalpy/lib/python{version.strip()}/site-packages/platform.pth")
        session.check(["bash", "-c", f"printf '%s\\n' {site} > {pth}"], "site path")
        session.check([session.expand("~/evalpy/bin/python"), "-c", "import torch, transformers"], "imports")
    finally:
        session.close()
    return "~/evalpy/bin/python"


@pytest.mark.ssh
@pytest.mark.slow
def test_remote_generation_round_trip(platform, sshd, ssh_profile, demo_model_dir, eval_set):
    from platform_core.models import scan_remote_models

    if not Path("/usr/bin/python3").exists():
        pytest.fail("the remote-generation test needs /usr/bin/python3 for the sshd test user")
    update_connection(platform, ssh_profile, python_path=remote_python(platform, ssh_profile))
    remote_model = sshd.home / "verl_jobs" / "models" / "demo"
    shutil.copytree(demo_model_dir, remote_model)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(sshd.home / "verl_jobs")], check=True)
    models = scan_remote_models(platform, ssh_profile)
    assert [m["name"] for m in models] == ["demo"]

    run_id = create_run(
        platform, "remote", "demo", eval_set, ["accuracy", "rouge"], {"max_new_tokens": 4, "temperature": 0},
        target=f"ssh:{ssh_profile}",
    )  # fmt: skip
    task = wait_task(platform, start_run(platform, run_id), timeout_s=600)
    log = Path(task["log_path"]).read_text(encoding="utf-8")
    assert task["state"] == "completed", log
    assert "[server]" in log and "backend=transformers" in log
    remote_dir = sshd.home / "verl_jobs" / "outputs" / "eval" / f"run-{run_id}"
    assert (remote_dir / "genscript.py").is_file() and (remote_dir / "exit_code").read_text().strip() == "0"
    local = output_dir(platform, run_id) / "generations.jsonl"
    assert local.read_bytes() == (remote_dir / "generations.jsonl").read_bytes()  # copied byte for byte
    run = get_run(platform, run_id)
    assert run["state"] == "completed" and run["model_path"] == str(remote_model)
    assert set(run["summary"]["per_category"]) == {"addition", "subtraction", "general"}
    assert len(load_samples(platform, run_id)) == 6


@pytest.mark.ssh
@pytest.mark.slow
def test_remote_run_stops_on_the_server_and_resumes(platform, sshd, ssh_profile, demo_model_dir, tmp_path, helpers):
    import time

    from platform_core.evaluation.datasets_adapter import add_eval_dataset
    from platform_core.evaluation.runs import stop_run

    update_connection(platform, ssh_profile, python_path=remote_python(platform, ssh_profile))
    remote_model = sshd.home / "verl_jobs" / "models" / "demo"
    shutil.copytree(demo_model_dir, remote_model)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(sshd.home / "verl_jobs")], check=True)
    rows = helpers.demo_eval_rows(per_category=8)
    dataset = add_eval_dataset(platform, helpers.write_jsonl(tmp_path / "long.jsonl", rows), "long")
    run_id = create_run(
        platform, "remote-stop", str(remote_model), dataset["id"], ["accuracy"],
        {"max_new_tokens": 32, "temperature": 0, "batch_size": 2}, target=f"ssh:{ssh_profile}",
    )  # fmt: skip
    local = output_dir(platform, run_id) / "generations.jsonl"
    start_run(platform, run_id)
    deadline = time.monotonic() + 300
    while (not local.exists() or local.read_bytes().count(b"\n") < 2) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert stop_run(platform, run_id)["state"] == "stopped"
    time.sleep(1)
    alive = subprocess.run(["pgrep", "-u", sshd.user, "-f", "genscript.py"], capture_output=True, text=True)
    assert alive.stdout.strip() == "", "the generator still runs on the server"
    done = local.read_bytes().count(b"\n")
    assert 2 <= done < len(rows)

    task = wait_task(platform, start_run(platform, run_id), timeout_s=600)
    log = Path(task["log_path"]).read_text(encoding="utf-8")
    assert task["state"] == "completed", log
    assert "already generated" in log
    ids = sorted(int(line.split(b'"id": ')[1].split(b",")[0]) for line in local.read_bytes().splitlines())
    assert ids == list(range(len(rows)))
