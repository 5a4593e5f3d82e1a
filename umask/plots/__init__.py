"""Plotly figures for the dashboard, built in one place (pages never build figures inline).

Every function takes plain tensors, numbers and names and returns a
``plotly.graph_objects.Figure``; none imports streamlit, so figures can also be
written to HTML or tested headless.
"""
