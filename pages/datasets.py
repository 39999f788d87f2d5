"""Datasets: datasets (coming with the datasets issue)."""

import streamlit as st

from app.i18n import t

st.title(t("nav.datasets"))
st.info(t("coming.title"))
st.write(t("coming.datasets"))
