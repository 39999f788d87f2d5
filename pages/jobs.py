"""Jobs: training jobs (coming with the jobs issue)."""

import streamlit as st

from app.i18n import t

st.title(t("nav.jobs"))
st.info(t("coming.title"))
st.write(t("coming.jobs"))
