"""The job detail page (`?job=<id>`) under AppTest: a finished local run read from real run files, and an SSH run
whose machine cannot be reached (the page warns and keeps working instead of raising)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.i18n import LANGUAGES, STRINGS

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "monitor" / "fixtures"


def _job(platform, *, name: str, target: str, output_dir: str, state: str, attempts: int = 1) -> int:
    """Store a job record and its attempts as the jobs service does (the page under test reads only these)."""
    now = time.time()
    job_id = platform.store.insert(
        "jobs",
        {
            "name": name,
            "algorithm": "sft",
            "engine": "verl",
            "target": target,
            "spec": {
                "fields": {"name": name, "algorithm": "sft", "target": target},
                "model_id": 999,
                "dataset_id": 999,
                "engine_reason": "",
                "steps_per_epoch": 6,
            },
            "state": state,
            "step": 12 if state == "completed" else 3,
            "total_steps": 12,
            "output_dir": output_dir,
            "created_at": now - 100,
            "updated_at": now,
        },
    )
    for attempt in range(1, attempts + 1):
        run_dir = f"{output_dir}/attempt-{attempt}"
        platform.store.insert(
            "runs",
            {
                "job_id": job_id,
                "attempt": attempt,
                "state": state if attempt == attempts else "paused",
                "pid": 123,
                "host": "localhost" if target == "local" else target[4:],
                "command": ["python", "-m", "verl.trainer.sft_trainer"],
                "env": {"CUDA_VISIBLE_DEVICES": "0"},
                "run_dir": run_dir,
                "log_path": f"{run_dir}/stdout.log",
                "metrics_path": f"{run_dir}/metrics.jsonl",
                "started_at": now - 100 + attempt,
                "ended_at": now - 50 + attempt if state != "running" or attempt < attempts else None,
            },
        )
    return job_id


def _open(job_id: int, lang: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("../pages/jobs.py")
    at.query_params["job"] = str(job_id)
    at.run()
    return at


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_finished_local_job_detail(platform, tmp_path, lang):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "verl_sft", run)  # a real verl SFT run: two attempts (paused at step 4, resumed)
    job_id = _job(platform, name="sft-fixture", target="local", output_dir=str(run), state="completed", attempts=2)
    at = _open(job_id, lang)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == f"#{job_id} sft-fixture"
    markdown = " ".join(_texts(at.markdown))
    assert STRINGS["sidebar.target.local"][lang] in markdown  # the translated target, not the raw "local"
    assert not at.warning, _texts(at.warning)
    # charts: one smoothing slider and one log toggle per chart, each with its own key
    smooth = [s for s in at.slider if s.key and s.key.startswith(f"metrics_{job_id}_") and s.key.endswith("_smooth")]
    logs = [s for s in at.toggle if s.key and s.key.startswith(f"metrics_{job_id}_") and s.key.endswith("_log")]
    assert len(smooth) >= 3 and len(smooth) == len(logs)
    assert len({s.key for s in smooth}) == len(smooth)
    # the log tab: the latest attempt by default, attempt 1 on request
    attempt = at.selectbox(key=f"log_attempt_{job_id}")
    assert attempt.value is None and attempt.options[0] == STRINGS["monitor.log.attempt_latest"][lang].format(attempt=2)
    latest_log = " ".join(h.proto.body for h in at.get("html"))
    assert "step:5 -" in latest_log and "step:1 -" not in latest_log  # attempt 2 logged steps 5-12
    attempt.set_value(1).run()
    assert not at.exception, [e.value for e in at.exception]
    first_log = " ".join(h.proto.body for h in at.get("html"))
    assert "step:1 -" in first_log and "step:5 -" not in first_log


@pytest.mark.parametrize("state", ["completed", "running"])
def test_ssh_job_with_unreachable_machine_warns(platform, tmp_path, state):
    from platform_core.connections import add_connection

    add_connection(platform, "gone", "127.0.0.1", "nobody", port=1, password="x")  # nothing listens on port 1
    job_id = _job(platform, name="remote", target="ssh:gone", output_dir="~/verl_jobs/outputs/remote", state=state)
    at = _open(job_id, "en")
    assert not at.exception, [e.value for e in at.exception]
    warnings = _texts(at.warning)
    assert any(w.startswith("Cannot reach the run's machine") for w in warnings), warnings
    assert len(warnings) == len(set(warnings))  # the same failure is shown once
    # the rest of the page is drawn: translated target, tabs, the attempts table, the controls
    assert "SSH" in " ".join(_texts(at.markdown)) or "gone" in " ".join(_texts(at.markdown))
    assert len(at.tabs) >= 8
    assert at.dataframe
    # the next refresh does not try the dead host again at once, and still does not raise
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(w.startswith("Cannot reach the run's machine") for w in _texts(at.warning))
