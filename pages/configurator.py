"""Configurator: compute configurator (coming)."""

import streamlit as st

from app.i18n import t

st.title(t("nav.configurator"))
st.info(t("coming.title"))
st.write(t("coming.configurator"))
