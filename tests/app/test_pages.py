"""Every page renders without an exception under AppTest, in Chinese and in English; strings are complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.i18n import LANGUAGES, STRINGS

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted(p.name for p in (REPO / "pages").glob("*.py"))


def _run(page: str, lang: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(f"../pages/{page}")
    at.run()
    return at


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("page", PAGES)
def test_page_renders(platform, page, lang):
    at = _run(page, lang)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} has no title"


def test_every_string_has_both_languages():
    for key, entry in STRINGS.items():
        for lang in LANGUAGES:
            assert entry.get(lang, "").strip(), f"{key} has no {lang} text"


def test_every_key_used_in_the_ui_exists():
    used = set()
    for path in list((REPO / "pages").glob("*.py")) + list((REPO / "app").rglob("*.py")):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", path.read_text()))
    missing = sorted(k for k in used if k not in STRINGS)
    assert not missing, missing


def test_chinese_strings_are_really_translated():
    """An English string copied into the zh column is an untranslated string."""
    ascii_only = [
        k
        for k, e in STRINGS.items()
        if e["zh"] == e["en"] and re.search(r"[A-Za-z]{4,}", e["zh"]) and not re.search(r"[\u4e00-\u9fff]", e["zh"])
    ]
    allowed = {"settings.conn.step.python"}  # product names only
    assert not [k for k in ascii_only if k not in allowed], ascii_only


def test_new_job_form_names_the_run_targets_in_the_ui_language(platform, demo_model_dir):
    """The form's "Run on" lists what the sidebar lists, translated; the value stays the target id."""
    from platform_core.models import register_model

    register_model(platform, demo_model_dir, name="tiny")
    at = _run("jobs.py", "zh")
    target = next(box for box in at.selectbox if box.label == STRINGS["jobs.field.target"]["zh"])
    assert target.options[0] == "本地" and target.options[-1] == "Ray 集群"
    assert target.value == "local"
