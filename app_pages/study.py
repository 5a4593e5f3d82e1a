"""Study sweeps: open a sweep folder (``python -m umask sweep --out DIR``) and see its plots and gallery.

Everything shown is read from ``DIR/results.csv`` and the result folders; the
figures are the same functions the sweep's ``report.html`` uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import umask
from umask.plots import study as plots
from umask.plots.run import upscale
from umask.report import REPORT_FILE, build_report, shown_copy
from umask.sweep import CSV_FILE, gallery_group, read_rows, summary_table, sweep_settings, typed_rows
from umask.text import count, duration, percent
from ui.folders import folder_picker
from ui.look import SLICE_POINTS, show_error
from ui.models import served_model

NOTE = (
    "**What am I looking at?** A sweep runs every combination of models, mask families and K (the study ran six "
    "models x grid/hstripes x K = 2..62). Make one with `python -m umask sweep ... --out DIR` (or `--study` for the "
    "study's own grid) and open DIR here. Success rate: the share of masks whose copy the model sends to its target "
    "class; time to 100 %: how long the runs that got every mask right needed."
)


def choose_folder() -> Path | None:
    return folder_picker("Sweep folder", CSV_FILE, 3, key="study", placeholder="sweeps/study", what="sweep folders")


def forget_unless_among(key: str, options: list) -> None:
    """Drop a widget's kept choice that is not among its options now (one
    from another folder, or a filtered-out family): it starts from the first."""
    if st.session_state.get(key) not in options:
        st.session_state.pop(key, None)


def gallery(folder: Path, rows: list[dict]) -> None:
    groups = sorted({gallery_group(r) for r in rows})
    if not groups:
        st.info("No finished runs yet.")
        return
    recipes = len({g[3:] for g in groups})

    def label(g: tuple) -> str:  # the recipe only when the folder holds several
        return f"{g[0]}: {g[1]} / {g[2]}" + (f" ({g[3]}, {g[4]} steps)" if recipes > 1 else "")

    forget_unless_among("study_gallery_group", groups)
    pick = st.selectbox("Runs of", groups, format_func=label, persist_state="session", key="study_gallery_group")
    mine = sorted((r for r in rows if gallery_group(r) == pick), key=lambda r: (r["k"], r["seed"]))
    seeds = sorted({r["seed"] for r in mine})
    forget_unless_among("study_gallery_seed", seeds)
    seed = st.radio("Seed", seeds, horizontal=True, persist_state="session", key="study_gallery_seed") if len(seeds) > 1 else seeds[0]
    mine = [r for r in mine if r["seed"] == seed]
    cols = st.columns(4)
    for n, row in enumerate(mine):
        try:
            result = umask.load_result(folder / row["folder"])
        except umask.UmaskError as err:
            cols[n % 4].error(str(err))
            continue
        masked, shows = shown_copy(result)
        with cols[n % 4]:
            st.image([upscale(result.image, side=160), upscale(masked, side=160)], width=140)
            st.caption(f"**K = {result.k}**: {percent(result.success_rate, 0)} in {count(result.steps, 'step')} ({duration(result.seconds, tenths=True)}). "
                       f"Second image: {shows}")


def report_box(folder: Path) -> None:
    report = folder / REPORT_FILE
    slices = st.sidebar.checkbox("with decision slices (loads each model)", value=False, persist_state="session", key="study_slices")
    if report.is_file() and not slices:  # the CLI's report has slices by default: do not drop them unsaid
        st.sidebar.caption("This replaces the folder's report.html, and any decision slices in it, unless the box above is ticked.")
    if st.sidebar.button("Write report.html", key="study_write"):
        bar = st.sidebar.progress(0.0, text="writing the report...")

        def hook(stage: str, done: int, total: int) -> None:
            bar.progress(done / total, text=f"{stage}: {done}/{total} points")

        try:
            # The models this server has loaded already, not a second copy each;
            # a checkpoint the CSV names outside the served folder gets a note, not a load.
            written = build_report(folder, slices=slices, slice_resolution=SLICE_POINTS, on_progress=hook,
                                   loader=lambda spec, device: served_model(spec),
                                   written_by="the dashboard's Study sweeps page")
        except Exception as err:  # the disk can refuse the report, and memory the slices
            show_error(err, st.sidebar)
        else:
            bar.progress(1.0, text=f"written: {written.path}")
            if written.unreadable:
                st.sidebar.warning(f"{count(len(written.unreadable), 'run folder')} of results.csv could not be read; "
                                   "the report leaves out their images and says why.")
    # Below the button: a report written by this click can be downloaded at once.
    if report.is_file():
        st.sidebar.download_button("Download report.html", report.read_bytes(), file_name=f"{folder.name}-report.html",
                                   mime="text/html", key="study_download")


def main() -> None:
    st.title("Study sweeps")
    st.markdown(NOTE)
    folder = choose_folder()
    if folder is None:
        # umask's recipe: the study's (a sweep's default) ends K = 10 at 20-50 % within a short budget.
        st.info("Choose a sweep folder in the sidebar, or make one in a minute: "
                "`python -m umask sweep --preset fast --k 2 10 --out sweeps/demo`.")
        return
    try:
        rows = typed_rows(read_rows(folder / CSV_FILE))
    except umask.UmaskError as err:
        st.error(str(err))
        return
    if not rows:  # a sweep whose first run is still going: five empty tabs and "Image ? px" said nothing
        st.info(f"{folder} has no finished runs yet; they appear here as the sweep finishes them (reload the page).")
        return
    settings = sweep_settings(folder)
    models = list(dict.fromkeys(r["model"] for r in rows))
    families = list(dict.fromkeys(r["mask_family"] for r in rows))
    # What to leave out, not what to show: a sweep still running adds models
    # and families as it goes, and they must appear without a click. Keyed
    # by folder, so another sweep starts with everything shown.
    hide_models = st.sidebar.multiselect("Hide models", models, persist_state="session", key=f"study_hide_models:{folder}")
    hide_fams = st.sidebar.multiselect("Hide mask families", families, persist_state="session", key=f"study_hide_families:{folder}")
    shown = [r for r in rows if r["model"] not in hide_models and r["mask_family"] not in hide_fams]
    # The figures of the runs the plots below show, not of the whole folder.
    c1, c2, c3, c4 = st.columns(4)
    if len(shown) == len(rows):
        c1.metric("Finished runs", len(rows))
    else:
        c1.metric("Finished runs shown", f"{len(shown)} of {len(rows)}")
    c2.metric("Models", len({r["model"] for r in shown}))
    c3.metric("Mean success", percent(float(np.mean([r["success_rate"] for r in shown])), 0) if shown else "n/a")
    c4.metric("Image", f"{settings.get('size', '?')} px")
    report_box(folder)
    if rows and not shown:  # not "no finished runs": there are, the filters hide them
        st.info(f"The sidebar hides all {len(rows)} finished runs; take a model or a mask family out of "
                "**Hide models** / **Hide mask families** to see them.")
        return
    rows = shown

    tabs = st.tabs(["Success rate", "Time to 100 %", "Geometry", "Gallery", "Table"])
    with tabs[0]:
        st.plotly_chart(plots.success_figure(rows), key="study_success")
    with tabs[1]:
        unit = st.radio("Measure", ["seconds", "steps"], horizontal=True, persist_state="session", key="study_time_unit")
        st.plotly_chart(plots.time_figure(rows, y=unit), key="study_time")
    with tabs[2]:
        st.caption("The worst mask's ||x − m_k x|| / ||x|| per norm (L0 = fraction of values changed) and the radius of "
                   "the smallest ball holding every masked copy, centred at x and over any centre. The Geometry page "
                   "shows one result in detail, with its decision regions.")
        st.plotly_chart(plots.geometry_figure(rows), key="study_geometry")
    with tabs[3]:
        gallery(folder, rows)
    with tabs[4]:
        st.dataframe(summary_table(rows), hide_index=True)
        st.download_button("Download results.csv", (folder / CSV_FILE).read_bytes(), file_name=f"{folder.name}-results.csv",
                           mime="text/csv", key="study_csv")


main()
