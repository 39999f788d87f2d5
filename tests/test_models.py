"""Model registry: config.json facts, scans of the workspace and extra directories, bad directories named."""

from __future__ import annotations

import shutil

import pytest

from platform_core.errors import InvalidInput
from platform_core.models import add_model_dir, list_models, read_model_info, register_model, scan_local_models


def test_read_model_info_counts_parameters_from_safetensors(demo_model_dir):
    from transformers import AutoModelForCausalLM

    info = read_model_info(demo_model_dir)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["architecture"] == "Qwen2ForCausalLM" and info["dtype"] == "float32"
    assert info["meta"]["has_tokenizer"]


def test_scan_registers_models_in_workspace_and_extra_dirs(platform, demo_model_dir, tmp_path):
    shutil.copytree(demo_model_dir, platform.workspace.models / "a")
    extra = tmp_path / "big-disk"
    shutil.copytree(demo_model_dir, extra / "qwen_0.5b")
    add_model_dir(platform, str(extra))
    names = {m["name"] for m in scan_local_models(platform)}
    assert names == {"a", "qwen_0.5b"}
    assert all(m["exists"] for m in list_models(platform))


def test_not_a_model_directory_is_refused(platform, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no config.json"):
        register_model(platform, tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{oops")
    with pytest.raises(InvalidInput, match="config.json: invalid JSON at line 1"):
        register_model(platform, tmp_path / "broken")


@pytest.mark.ssh
def test_remote_models_are_listed_over_ssh(platform, sshd, ssh_profile, demo_model_dir):
    import subprocess

    from platform_core.models import scan_remote_models

    target = sshd.home / "verl_jobs" / "models" / "tiny"
    shutil.copytree(demo_model_dir, target)
    extra = sshd.home / "autodl-tmp" / "qwen_0.5b"
    shutil.copytree(demo_model_dir, extra)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(sshd.home)], check=True)
    add_model_dir(platform, "~/autodl-tmp", ssh_profile)
    rows = scan_remote_models(platform, ssh_profile)
    paths = {r["path"] for r in rows}
    assert paths == {str(target), str(extra)}
    assert all(r["architecture"] == "Qwen2ForCausalLM" and r["size_bytes"] > 0 for r in rows)


def test_reward_models_are_not_offered_as_a_base_or_for_evaluation(demo_platform):
    """The demo kit's reward model (a scoring head) is registered, but only generative models are a training base."""
    everything = {m["name"]: m["architecture"] for m in list_models(demo_platform)}
    generative = {m["name"] for m in list_models(demo_platform, generative=True)}
    scoring = {name for name, arch in everything.items() if arch.endswith("ForSequenceClassification")}
    assert scoring and "demo-qwen2-tiny" in generative
    assert generative == set(everything) - scoring


def test_adding_a_registered_path_again_keeps_its_record_or_names_it(platform, demo_model_dir):
    """Same path + same name: the record is returned unchanged (its source kept); another name is refused, naming
    the record; `rename_model` gives it another name."""
    from platform_core.models import get_model, rename_model

    model_id = register_model(platform, demo_model_dir, name="demo-qwen2-tiny", source="demo")
    assert register_model(platform, demo_model_dir, name="demo-qwen2-tiny") == model_id
    assert register_model(platform, str(demo_model_dir) + "/") == model_id  # no name: the existing record
    kept = get_model(platform, model_id)
    assert kept["source"] == "demo" and kept["name"] == "demo-qwen2-tiny"
    with pytest.raises(InvalidInput, match=r"already registered as 'demo-qwen2-tiny' \(#\d+\); use `model rename"):
        register_model(platform, demo_model_dir, name="my-model")
    assert platform.store.count("models") == 1 and get_model(platform, model_id)["name"] == "demo-qwen2-tiny"
    assert rename_model(platform, model_id, "my-model")["name"] == "my-model"
    assert register_model(platform, demo_model_dir, name="my-model") == model_id
    assert get_model(platform, model_id)["source"] == "demo"
    # the platform's own registrations (demo init, surgery outputs) keep the user's name instead of failing
    assert register_model(platform, demo_model_dir, name="demo-qwen2-tiny", source="demo") == model_id
    assert get_model(platform, model_id)["name"] == "my-model"


def test_a_scanned_model_takes_the_source_of_an_explicit_registration(platform, demo_model_dir):
    from platform_core.models import get_model

    shutil.copytree(demo_model_dir, platform.workspace.models / "found")
    (found,) = scan_local_models(platform)
    assert found["source"] == "scan"
    assert register_model(platform, platform.workspace.models / "found", name="found") == found["id"]
    assert get_model(platform, found["id"])["source"] == "user"
    other = register_model(platform, demo_model_dir, name="x")
    with pytest.raises(InvalidInput, match="'x' is already used by model"):
        from platform_core.models import rename_model

        rename_model(platform, found["id"], "x")
    assert other != found["id"]


def test_the_model_add_and_rename_commands(platform, demo_model_dir):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PLATFORM_HOME": str(platform.workspace.root)}
    env.pop("PLATFORM_SECRET_KEY", None)

    def cli(*args, code=0):
        done = subprocess.run(
            [sys.executable, "-m", "platform_core", "model", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == code, done.stderr
        return done

    first = json.loads(cli("add", str(demo_model_dir), "--name", "tiny", "--json").stdout)
    assert first["existing"] is False and first["name"] == "tiny" and first["source"] == "user"
    again = cli("add", str(demo_model_dir), "--name", "tiny")
    assert again.stdout.strip() == f"already registered as model #{first['id']} tiny"
    refused = cli("add", str(demo_model_dir), "--name", "other", code=2)
    assert f"already registered as 'tiny' (#{first['id']})" in refused.stderr
    renamed = json.loads(cli("rename", "tiny", "other", "--json").stdout)
    assert renamed["id"] == first["id"] and renamed["name"] == "other"


@pytest.mark.ssh
def test_a_server_s_models_are_listed_by_a_background_task(platform, sshd, ssh_profile, demo_model_dir):
    import subprocess

    from platform_core.models import remote_scan_state, start_remote_scan
    from platform_core.tasks import wait_task

    assert remote_scan_state(platform, ssh_profile)["state"] == "never"
    target = sshd.home / "verl_jobs" / "models" / "tiny"
    shutil.copytree(demo_model_dir, target)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(sshd.home)], check=True)
    task_id = start_remote_scan(platform, ssh_profile)
    assert remote_scan_state(platform, ssh_profile) == {
        "state": "running",
        "task_id": task_id,
        "at": None,
        "error": None,
    }
    assert start_remote_scan(platform, ssh_profile) == task_id  # one listing at a time
    task = wait_task(platform, task_id, timeout_s=120)
    assert task["state"] == "completed", task["error"]
    assert task["result"] == {"connection": ssh_profile, "models": 1}
    state = remote_scan_state(platform, ssh_profile)
    assert state["state"] == "completed" and state["at"] and state["task_id"] == task_id
    assert [m["path"] for m in list_models(platform, ssh_profile, generative=True)] == [str(target)]


def test_an_unreachable_server_makes_the_listing_fail_with_the_reason(platform):
    import socket
    import time

    from platform_core.connections import add_connection
    from platform_core.models import remote_scan_state, start_remote_scan
    from platform_core.tasks import wait_task

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    add_connection(platform, "gone", "127.0.0.1", "nobody", port=port, password="x" * 8, workdir="~/verl_jobs")
    started = time.monotonic()
    task_id = start_remote_scan(platform, "gone")
    assert time.monotonic() - started < 5  # the switch never waits for the server
    task = wait_task(platform, task_id, timeout_s=60)
    assert task["state"] == "failed" and "connection refused" in task["error"]
    state = remote_scan_state(platform, "gone")
    assert state["state"] == "failed" and "connection refused" in state["error"]
    assert list_models(platform, "gone") == []
