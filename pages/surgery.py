"""Surgery: model surgery (coming)."""

import streamlit as st

from app.i18n import t

st.title(t("nav.surgery"))
st.info(t("coming.title"))
st.write(t("coming.surgery"))
