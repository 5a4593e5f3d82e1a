"""Streamlit glue shared by the dashboard's pages (the package ``umask`` never imports streamlit).

``server``: what one process sets up (threads, worker processes); ``models``:
models loaded once and shared; ``session``: one visitor's run and result;
``folders``: what a page may open; ``look``: styles and labels.
"""

# Imported up front, once: plotly and streamlit import pandas lazily, and a
# second script thread that meets a half-imported pandas breaks plotly's
# validators ("partially initialized module 'pandas'").
import pandas  # noqa: F401
