"""Every UI string, in Chinese and English, looked up by key: `t("nav.jobs")`, `t("task.title", id=3, title="merge")`.

The table is split by area (common.py, settings.py, ...) only to keep files short; `STRINGS` is the one merged
table, and tests check that every key has both languages and that every key used in the code exists.
"""

from __future__ import annotations

import importlib
import pkgutil

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANGUAGE = "zh"


def _merge() -> dict[str, dict[str, str]]:
    """Merge the STRINGS of every module in this package (one per area), refusing a key defined twice."""
    table: dict[str, dict[str, str]] = {}
    for name in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        part = importlib.import_module(f"app.i18n.{name}").STRINGS
        clash = set(table) & set(part)
        if clash:
            raise ValueError(f"duplicate i18n keys in {name}: {sorted(clash)}")
        table.update(part)
    return table


STRINGS = _merge()


def current_language() -> str:
    try:
        import streamlit as st

        return st.session_state.get("lang", DEFAULT_LANGUAGE)
    except Exception:  # noqa: BLE001 - outside a Streamlit session (CLI, tests) fall back to the default
        return DEFAULT_LANGUAGE


def t(key: str, lang: str | None = None, **values) -> str:
    """Return the string for `key` in the current (or given) language, formatted with `values`."""
    entry = STRINGS.get(key)
    if entry is None:
        raise KeyError(f"missing UI string {key!r}")
    text = entry[lang or current_language()]
    return text.format(**values) if values else text
