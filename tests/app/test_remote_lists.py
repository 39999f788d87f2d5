"""SSH mode under AppTest: switching the run target lists the server's models in the background, the job form says
how current that list is, and the Datasets page shows the files already on the server."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.i18n import STRINGS
from platform_core import settings
from platform_core.tasks import wait_task

REPO = Path(__file__).resolve().parents[2]


def _app(lang: str, page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page:
        at.switch_page(f"../pages/{page}")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.info, at.warning, at.caption, at.markdown, at.subheader) for e in kind)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _form_target(at: AppTest, lang: str, target: str) -> None:
    """Pick the New job form's "Run on" (it starts at the sidebar's run target)."""
    box = next(box for box in at.selectbox if box.label == STRINGS["jobs.field.target"][lang])
    box.set_value(target).run()
    assert not at.exception, [e.value for e in at.exception]


def _scan_tasks(platform) -> list[dict]:
    return platform.store.find("tasks", "kind = 'models.scan_remote'", order_by="id DESC")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_unreachable_server_gives_hints_and_warnings_not_exceptions(platform, lang):
    from platform_core.connections import add_connection

    add_connection(platform, "gone", "127.0.0.1", "nobody", port=_closed_port(), password="x" * 8)
    settings.set_run_target(platform, "ssh:gone")  # set without the switch: never listed
    at = _app(lang, "jobs.py")
    _form_target(at, lang, "ssh:gone")
    never = STRINGS["jobs.models.never_scanned"][lang].format(name="gone")
    assert never in _texts(at)
    next(b for b in at.button if b.label == STRINGS["jobs.models.scan"][lang]).click().run()
    assert not at.exception, [e.value for e in at.exception]
    (task,) = _scan_tasks(platform)
    assert wait_task(platform, task["id"], timeout_s=60)["state"] == "failed"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    failed = STRINGS["jobs.models.scan_failed"][lang].split("{name}")[0]
    warnings = " ".join(w.value for w in at.warning)
    assert failed in warnings and "connection refused" in warnings
    sidebar = STRINGS["sidebar.scan.failed"][lang].format(name="gone", error="")
    assert any(w.value.startswith(sidebar) for w in at.sidebar.warning)


@pytest.mark.ssh
def test_switching_to_a_server_lists_its_models_in_the_background(platform, sshd, ssh_profile, demo_model_dir):
    target = sshd.home / "verl_jobs" / "models" / "remote-tiny"
    shutil.copytree(demo_model_dir, target)
    subprocess.run(["chown", "-R", f"{sshd.user}:{sshd.user}", str(sshd.home)], check=True)
    at = _app("en")
    assert not _scan_tasks(platform)
    at.sidebar.selectbox(key="run_target_switch_en").set_value(f"ssh:{ssh_profile}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert settings.run_target(platform) == f"ssh:{ssh_profile}"
    (task,) = _scan_tasks(platform)
    assert task["params"]["connection"] == ssh_profile
    assert wait_task(platform, task["id"], timeout_s=120)["state"] == "completed"
    at.switch_page("../pages/jobs.py")
    at.run()
    box = next(box for box in at.selectbox if box.label == STRINGS["jobs.field.target"]["en"])
    assert box.value == f"ssh:{ssh_profile}"  # the New job form starts where the sidebar says jobs run
    model = next(box for box in at.selectbox if box.label == STRINGS["jobs.field.model"]["en"])
    assert "remote-tiny" in model.options
    texts = _texts(at)
    assert "never been listed" not in texts and "Could not list" not in texts
    # Settings' Save of the run mode lists the models again, as a task shown on the page
    at.switch_page("../pages/settings.py")
    at.run()
    at.button(key="save_mode").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(_scan_tasks(platform)) == 2


@pytest.mark.ssh
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_datasets_page_shows_the_files_on_the_server(platform, sshd, ssh_profile, tmp_path, lang):
    from platform_core.datasets.service import add_dataset
    from platform_core.datasets.sync import ensure_synced

    source = tmp_path / "a.jsonl"
    source.write_text('{"prompt": "1+1", "response": "2"}\n')
    record = add_dataset(platform, source, "sft", "mine")
    remote = ensure_synced(platform, record["id"], ssh_profile)
    folder = sshd.home / "verl_jobs" / "datasets"
    (folder / "from-elsewhere.parquet").write_bytes(b"PAR1")
    settings.set_run_target(platform, f"ssh:{ssh_profile}")
    at = _app(lang, "datasets.py")
    header = STRINGS["datasets.remote.header"][lang].format(name=ssh_profile)
    assert header in [s.value for s in at.subheader]
    frame = at.dataframe[-1].value
    file_column = STRINGS["datasets.remote.col.file"][lang]
    local_column = STRINGS["datasets.remote.col.local"][lang]
    rows = dict(zip(frame[file_column], frame[local_column], strict=True))
    assert set(rows) == {remote.rsplit("/", 1)[1], "from-elsewhere.parquet"}
    assert rows["from-elsewhere.parquet"] == STRINGS["datasets.remote.match.none"][lang]
    assert rows[remote.rsplit("/", 1)[1]].startswith(f"#{record['id']} mine v1")
    # the server goes away: a warning, the local list still there, no exception
    from platform_core.connections import update_connection

    update_connection(platform, ssh_profile, port=_closed_port())
    at.button(key="ds_remote_refresh").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("connection refused" in w.value for w in at.warning)
    assert at.dataframe  # the local datasets table
