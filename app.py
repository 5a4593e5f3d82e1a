"""umask dashboard: ``streamlit run app.py`` (placeholder until the dashboard lands)."""

import streamlit as st

import umask

st.set_page_config(page_title="umask", layout="wide")
st.title("umask: one image, many classes")
st.write("Models:", ", ".join(m.name for m in umask.list_models()))
