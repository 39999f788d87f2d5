"""The access password guards the whole app (the sidebar too), and a workspace the app cannot open is a clear
message, not a traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.i18n import STRINGS
from platform_core import settings
from platform_core.connections import add_connection

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def _app(lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_the_password_nothing_but_the_gate_is_drawn(platform):
    add_connection(platform, "gpu", "10.0.0.5", "root", password="pw-123456")
    settings.set_access_password(platform, PASSWORD)
    at = _app()
    assert [t.value for t in at.title] == [STRINGS["access.title"]["en"]]
    assert len(at.text_input) == 1 and at.text_input[0].label == STRINGS["access.password"]["en"]
    # The sidebar's widgets (language switch, run-target selector) are not there to be used.
    assert not at.sidebar.selectbox and not at.selectbox
    assert not at.sidebar.children, [node.type for node in at.sidebar.children.values()]
    # A wrong password keeps the gate closed and changes nothing.
    at.text_input[0].input("wrong password")
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == [STRINGS["access.wrong"]["en"]]
    assert not at.selectbox
    assert settings.run_target(platform) == "local"
    assert settings.get(platform, "language") == "zh"


def test_the_right_password_opens_the_app_and_its_sidebar(platform):
    add_connection(platform, "gpu", "10.0.0.5", "root", password="pw-123456")
    settings.set_access_password(platform, PASSWORD)
    at = _app()
    at.text_input[0].input(PASSWORD)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert STRINGS["access.title"]["en"] not in [t.value for t in at.title]
    assert at.title  # the default page rendered
    target = at.sidebar.selectbox[0]
    assert target.label == STRINGS["sidebar.target"]["en"] and target.value == "local"
    # Once inside, the switch works and is saved.
    target.select("ssh:gpu")
    at.run()
    assert settings.run_target(platform) == "ssh:gpu"


def test_no_password_means_no_gate(platform):
    at = _app()
    assert STRINGS["access.title"]["en"] not in [t.value for t in at.title]
    assert at.sidebar.selectbox


def test_a_database_from_a_newer_version_is_a_clear_message(tmp_path, monkeypatch):
    from platform_core.context import get_platform, reset_platforms
    from platform_core.store.migrations import LATEST_VERSION

    home = tmp_path / "newer"
    monkeypatch.setenv("PLATFORM_HOME", str(home))
    monkeypatch.delenv("PLATFORM_SECRET_KEY", raising=False)
    reset_platforms()
    db_path = get_platform(home).workspace.db_path
    reset_platforms()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST_VERSION + 3,))
    conn.close()
    try:
        at = _app()
        assert len(at.error) == 1
        message = at.error[0].value
        assert message.startswith("The platform cannot start:")
        assert f"schema version {LATEST_VERSION + 3}" in message and str(db_path) in message
        assert not at.sidebar.selectbox
    finally:
        reset_platforms()
