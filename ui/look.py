"""How the pages look and name things: the style rules, picture sizes, and
the labels of classes, fills and part layouts."""

from __future__ import annotations

import streamlit as st

from umask.errors import user_sentence
from umask.masks import grid_side


#: Metric labels and values wrap instead of ending in "...": the answer
#: "consomme (925)" or "Smallest disc with every class" must be read whole on
#: a 1024 px projector, where Streamlit's single line cuts them off.
WRAP_METRICS_CSS = """<style>
[data-testid="stMetricValue"] .stMarkdownEllipsis, [data-testid="stMetricValue"] p,
[data-testid="stMetricLabel"] .stMarkdownEllipsis, [data-testid="stMetricLabel"] p {
  white-space: normal; overflow: visible; text-overflow: clip;
}
</style>"""


def style_page() -> None:
    """The dashboard's few style rules (a style-only st.html takes no room on the page)."""
    st.html(WRAP_METRICS_CSS)


#: How tall a half-page picture (plotly) is drawn, in pixels: about a
#: half-page column's width on a 1024 px screen. Taller, the picture keeps
#: its square shape and blank bands above and below it push what follows
#: below the fold; at 1440 px the pictures are this size.
PICTURE_HEIGHT = 270

#: Decision-slice points a side on the dashboard (Geometry's default, Study's
#: report): fewer than the CLI's 41, since a class waits for 31 x 31 forwards.
SLICE_POINTS = 31


def show_error(err: Exception, where=st) -> None:
    """An error box (in ``where``: the page, the sidebar, a column) with the
    one sentence for ``err`` (:func:`umask.errors.user_sentence`); anything
    else is a bug in umask and is raised again, traceback and all."""
    sentence = user_sentence(err)
    if sentence is None:
        raise err
    where.error(sentence)


#: The hidden-pixel fills the Generate page offers, as it names them.
FILLS = {"0": "black (0)", "0.5": "grey (0.5)", "mean": "the image's mean"}


def fill_label(fill: float | str) -> str:
    """A result's fill as Generate names it ("black (0)"), or the number a CLI run gave."""
    return FILLS.get("mean" if fill == "mean" else f"{float(fill):g}", f"{fill}")


def unused_cells_note(family: str, k: int, mode: str = "hide") -> str:
    """For a grid that K does not fill: which squares are parts, and what
    becomes of the rest ("" otherwise). Each copy hides its part (hide mode:
    the rest always shows) or shows only its part (keep: the rest never shows)."""
    side = grid_side(k)
    if family != "grid" or side * side == k:
        return ""
    fate = "never hidden" if mode == "hide" else "hidden in every copy"
    return (f"K = {k} on a grid uses the first {k} of {side * side} squares ({side} x {side}, row by row); "
            + (f"the last one belongs to no part and is {fate}." if side * side - k == 1 else
               f"the other {side * side - k} belong to no part and are {fate}."))
