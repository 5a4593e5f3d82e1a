"""umask dashboard: ``streamlit run app.py``.

A thin shell: page config, the navigation, nothing else. Each page in
``pages/`` wires widgets to the ``umask`` package; shared glue is in ``ui/``.
"""

import streamlit as st

from ui.common import configure_torch

st.set_page_config(page_title="umask: one image, many classes", page_icon=":performing_arts:", layout="wide")
configure_torch()

# (file, title, icon) in the order a visitor meets them.
PAGES = [
]

navigation = st.navigation([st.Page(f"pages/{file}", title=title, icon=icon) for file, title, icon in PAGES])
navigation.run()
