"""Evaluation: evaluation center (coming)."""

import streamlit as st

from app.i18n import t

st.title(t("nav.evaluation"))
st.info(t("coming.title"))
st.write(t("coming.evaluation"))
