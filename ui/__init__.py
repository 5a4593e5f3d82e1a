"""Streamlit glue shared by the dashboard's pages (the package ``umask`` never imports streamlit)."""
