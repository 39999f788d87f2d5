"""Streamlit entry point: `streamlit run app/main.py`. Sets up the page, the sidebar and the navigation."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.i18n import t  # noqa: E402
from app.state import access_gate, get_platform_cached, init_language, reconcile_once, sidebar  # noqa: E402
from platform_core.errors import PlatformError  # noqa: E402

st.set_page_config(
    page_title="Training Platform · 训练平台", page_icon=str(ROOT / "assets" / "logo.svg"), layout="wide"
)
try:
    platform = get_platform_cached()
except PlatformError as exc:  # e.g. a database written by a newer version, or a workspace that cannot be created
    st.title(t("app.title"))
    st.error(t("app.start_failed", error=str(exc)))
    st.stop()
init_language(platform)
# The gate comes before anything else: the sidebar's switches change stored settings.
if not access_gate(platform):
    st.stop()
sidebar(platform)
reconcile_once(platform)

PAGES = ROOT / "pages"
navigation = st.navigation(
    {
        t("nav.section.train"): [
            st.Page(
                PAGES / "jobs.py", title=t("nav.jobs"), icon=":material/model_training:", url_path="jobs", default=True
            ),
            st.Page(PAGES / "datasets.py", title=t("nav.datasets"), icon=":material/dataset:", url_path="datasets"),
            st.Page(
                PAGES / "configurator.py",
                title=t("nav.configurator"),
                icon=":material/calculate:",
                url_path="configurator",
            ),
        ],
        t("nav.section.models"): [
            st.Page(PAGES / "surgery.py", title=t("nav.surgery"), icon=":material/merge_type:", url_path="surgery"),
            st.Page(
                PAGES / "evaluation.py", title=t("nav.evaluation"), icon=":material/fact_check:", url_path="evaluation"
            ),
        ],
        t("nav.section.system"): [
            st.Page(PAGES / "settings.py", title=t("nav.settings"), icon=":material/settings:", url_path="settings"),
        ],
    }
)
navigation.run()
