"""Geometry: how close a universal image's masked copies are, where the model's classes meet, and the 2-D toy.

Widgets only: the distances come from :mod:`umask.geometry`, the toy from
:mod:`umask.toy`, the figures from :mod:`umask.plots.geometry`.
"""

from __future__ import annotations

import streamlit as st

import umask
from umask.geometry import CLAIM_COLUMNS, NORM_LABELS, check_slice_copies, claim_rows, claim_text, decision_slice, result_geometry, study_claim
from umask.plots import geometry as plots
from umask.toy import SCATTERED_OFFSETS, classes_in_disc, make_toy, meeting_point, region_map, smallest_disc_with_all_classes
from umask.results import JSON_FILE
from umask.targets import class_label
from umask.text import percent
from ui.folders import folder_picker
from ui.look import SLICE_POINTS, show_error
from ui.models import fed_model, unknown_model
from ui.session import RESULT_KEY, kept_upload, result_from_upload, result_id, session_memo

NOTE = (
    "**The study's reading.** An image is a point of a space with one axis per pixel value. Hiding a part moves it a "
    "little: the K masked copies lie in a small ball around the universal image x, and the model sends them to K "
    "different classes, so the class regions must meet near x. Below: how small that ball is (in each norm), a slice "
    "of the real model's class regions through x and two copies, and the picture behind it in two dimensions."
)


def pick_result() -> umask.Result | None:
    sources = ["A result folder", "Upload a zip"]
    if st.session_state.get(RESULT_KEY) is not None:
        sources.insert(0, "The current result (Generate / Explore)")
    source = st.sidebar.radio("Result", sources, persist_state="session", key="geo_source")
    try:
        if source.startswith("The current"):
            return st.session_state[RESULT_KEY]
        if source == "Upload a zip":
            upload = kept_upload(st.sidebar, "Result zip", types=["zip"], key="geo_upload")
            return result_from_upload(upload[0]) if upload is not None else None
        # A sweep's run lies seven levels down (sweeps/NAME/runs/MODEL/FAMILY-MODE/PRESET-STEPS/kK-seedS): one more spare.
        path = folder_picker("Result folder", JSON_FILE, 8, key="geo", placeholder="runs/first", what="result folders",
                             first=False, deepest_first=True)  # a sweep holds many runs: none is the obvious one
        return umask.load_result(path) if path else None
    except umask.UmaskError as err:
        st.error(str(err))
        return None


def distances(result: umask.Result) -> None:
    rid = result_id(result)
    # Once per result: the toy's sliders rerun this page many times.
    geo = session_memo(("geometry", rid), lambda: result_geometry(result))
    s = geo.summary()
    st.subheader(f"Distances ({result.model}, {result.mask_family}/{result.mask_mode}, K = {result.k})")
    # As wide as their figures, wrapping to a second row on a narrow screen:
    # five equal columns broke "25.00 %" over two lines at 1024 px.
    with st.container(horizontal=True, gap="large"):
        for label, key in (("Worst L0 (values changed)", "max_abs_l0"), ("Worst L1, relative", "max_rel_l1"),
                           ("Worst L2, relative", "max_rel_l2"), ("Worst L∞, relative", "max_rel_linf"),
                           ("Worst L2 norm change", "max_norm_change_l2")):
            st.metric(label, percent(s[key]), width="content")
    st.text(geo.balls_text())
    st.caption("Per mask k: ‖x − m_k x‖ over all 3·H·W values; relative = divided by ‖x‖ in the same norm; "
               "norm change = | ‖x‖ − ‖m_k x‖ | / ‖x‖ (the study's \"relative difference of norms\"). "
               + "; ".join(NORM_LABELS.values()) + ".")
    st.plotly_chart(plots.distances_figure(geo), key="geo_distances")
    with st.expander("Per-mask table"):
        st.dataframe(geo.table(), hide_index=True)
    size = result.size
    claim = session_memo(("claim", rid), lambda: study_claim(result.image, size=size))
    k = claim["k"]
    st.subheader(f"The study's 1.6 % (hstripes, K = {k}, {size} x {size})")
    st.markdown(claim_text(claim))
    # One row per figure, one column per image: narrow, so no column (the
    # L2 norm change the text points to) hides past a 1024 px screen's edge.
    in_percent = {label for label, _ in CLAIM_COLUMNS}
    images = claim_rows(claim)
    figures = [key for key in images[0] if key != "image"]
    st.dataframe([{"figure (worst mask)": key, **{row["image"]: percent(row[key]) if key in in_percent else f"{row[key]:.3f}"
                                                  for row in images}} for key in figures], hide_index=True)


def slice_section(result: umask.Result) -> None:
    st.subheader("Decision regions near x")
    st.caption("The plane through x and two masked copies (L2 axes, orthonormal, not clamped to [0, 1]); each point is "
               "classified by the model. The star is x; diamonds the two copies; circles the other copies projected. "
               "A marker's own class shows when you point at it: the grid's points near it need not share it, as "
               "each class region near x can be thinner than the grid's spacing.")
    c = st.columns(3)
    i = c[0].number_input("Copy i", 0, result.k - 1, 0, persist_state="session", key="geo_i")
    j = c[1].number_input("Copy j", 0, result.k - 1, min(result.k - 1, max(1, result.k // 2)), persist_state="session", key="geo_j")
    res = c[2].slider("Points a side", 11, 81, SLICE_POINTS, step=10, persist_state="session", key="geo_res", help="Cost: the square of this, in forwards.")
    key = ("geo_slice", result_id(result), int(i), int(j), int(res))
    try:  # said before the click, beside a greyed button, not after it
        check_slice_copies(result.k, int(i), int(j))
        unknown = unknown_model(result.model)
        unusable = f"{unknown.rstrip('.')}; its slice cannot be classified here." if unknown else None
    except umask.UmaskError as err:
        unusable = str(err)
    if st.button("Classify the slice", key="geo_go", disabled=unusable is not None):
        model = fed_model(result, result.model)  # as it was made: its own resize
        if model is None:
            return
        bar = st.progress(0.0, text="classifying...")
        try:
            sl = decision_slice(model, result.image, result.masks, i=int(i), j=int(j), fill=result.fill, resolution=int(res),
                                on_progress=lambda d, t: bar.progress(d / t, text=f"{d}/{t} points"))
        except Exception as err:  # memory can run out on a large model's fine slice
            show_error(err)
            return
        bar.empty()
        st.session_state[key] = sl
    sl = st.session_state.get(key)
    if unusable is not None:
        st.warning(unusable)
    elif sl is None:
        st.info(f"Click **Classify the slice** to classify {int(res)} x {int(res)} points of the plane through x, "
                f"m{int(i)} x and m{int(j)} x (each new choice of copies or points is a new slice).")
    else:
        names = umask.imagenet_classes()
        st.plotly_chart(plots.slice_figure(sl, targets=result.targets), key="geo_slice_fig")
        st.caption(f"x is classified {class_label(sl.centre_class, names)}; {len(set(sl.classes.ravel().tolist()))} "
                   f"classes on the slice; {percent(sl.outside_box.mean(), 0)} of its points leave the [0, 1] box.")


def toy_section() -> None:
    st.subheader("The picture in two dimensions")
    st.caption("C linear classes: class c scores w_c · p + b_c, w_c = (cos a_c, sin a_c). With every offset 0 all "
               "boundary lines meet in one point, so a disc of any size around it holds every class; move an offset and "
               "the smallest disc that holds every class grows. (From 4 classes: the boundaries of 2 or 3 linear "
               "classes always meet in one point, whatever the offsets.)")
    c = st.columns(3)
    classes = c[0].slider("Classes", 4, 8, 5, persist_state="session", key="toy_classes")
    meet = c[1].toggle("Lines meet", value=True, persist_state="session", key="toy_meet")
    probe_r = c[2].slider("Probe disc radius", 0.05, 3.0, 0.3, persist_state="session", key="toy_probe")
    angles, offsets = [], []
    with st.expander("Move the lines (angle and offset of each class)", expanded=not meet):
        cols = st.columns(2)
        for n in range(classes):
            angles.append(cols[0].slider(f"angle {n} (°)", 0, 359, int(360 * n / classes), persist_state="session", key=f"toy_a{n}_{classes}"))
            offsets.append(0.0 if meet else cols[1].slider(f"offset {n}", -2.0, 2.0, SCATTERED_OFFSETS[n],
                                                          step=0.1, persist_state="session", key=f"toy_b{n}_{classes}"))
    try:
        toy = make_toy(angles, offsets)
    except umask.UmaskError as err:
        st.error(str(err))
        return
    regions = region_map(toy, extent=3.0, resolution=121)
    disc = smallest_disc_with_all_classes(regions, candidates=41)
    point, residual = meeting_point(toy)
    inside = classes_in_disc(toy, (float(point[0]), float(point[1])), probe_r)
    st.plotly_chart(plots.toy_figure(regions, disc=disc, meeting=(point, residual),
                                     probe=((float(point[0]), float(point[1])), probe_r)), key="toy_fig")
    m = st.columns(3)
    m[0].metric("Lines meet?", "yes" if residual < 1e-9 else "no", help=f"score mismatch at the best point: {residual:.3g}")
    m[1].metric("Smallest disc with every class", disc.describe(), help=f"searched on a grid; accurate to about {disc.accuracy:.2f}")
    m[2].metric("Classes in the probe disc", f"{len(inside)} of {classes}",
                help="The dashed disc, centred where the lines meet (or come closest).")
    if disc.missing:  # "none in view" alone left a class wondering where the other colours went
        gone = disc.missing
        st.caption(f"{'Class' if len(gone) == 1 else 'Classes'} {', '.join(map(str, gone))} "
                   f"{'wins' if len(gone) == 1 else 'win'} nowhere in this view: at every point shown another class "
                   "scores higher (once the lines do not meet, a linear class may win nowhere at all), so no disc here "
                   "holds every class. Move the offsets towards 0 to bring them back.")


def main() -> None:
    st.title("Geometry")
    st.markdown(NOTE)
    result = pick_result()
    if result is None:
        st.info("Choose a result in the sidebar (one you just made, a result folder, e.g. a sweep's run, or a zip) "
                "to measure it. The toy below needs none.")
    else:
        distances(result)
        slice_section(result)
    toy_section()


main()
