"""Explore: hide parts of a universal image and see what each model says.

Every prediction shown comes from :func:`umask.evaluate.classify_masked` (a
custom combination of hidden parts is one keep-multiplier mask made by
:func:`umask.masks.selection_mask`) or :func:`umask.evaluate.classify_parts`
(the K x models summary), so the page shows exactly what the engine measures.
"""

from __future__ import annotations

import functools

import streamlit as st

import umask
from umask.errors import user_sentence
from umask.evaluate import weights_changed
from umask.masks import apply_masks, selection_mask
from umask.models import DEFAULT_MODEL, weights_available
from umask.plots import run as plots
from umask.results import zip_name
from umask.text import percent
from ui.look import PICTURE_HEIGHT, fill_label, show_error, unused_cells_note
from ui.models import (MODEL_HELP, explain_load_failure, fed_model, model_choices, model_label, refused_checkpoint,
                       unknown_model)
from ui.session import (
    JOB_KEY,
    RESULT_KEY,
    RESULT_SOURCE_KEY,
    result_from_upload,
    result_id,
    result_zip,
    session_memo,
    set_result,
    upload_digest,
)


#: Model columns side by side (more go on the next row).
MODELS_PER_ROW = 2

NOTE = (
    "**What am I looking at?** The universal image with its parts outlined. Click a part, or its number "
    "under the pictures, to hide it (or, for a *keep* result, to show only it): the right-hand picture is exactly "
    "what the model is fed. "
    "With one part hidden, the model should name that part's target class. The grid at the bottom shows, for "
    "every part, whether each selected model gives the target: an image made for one model often fools "
    "only that model."
)


def open_upload() -> None:
    """Read a result zip from the sidebar (once per distinct file)."""
    upload = st.sidebar.file_uploader("Open a result (.zip)", type=["zip"], key="exp_upload",
                                      help="A zip from the Download button, or a zipped CLI result folder.")
    if upload is None:
        # Cleared: the same file uploaded again is new again, and its error goes.
        st.session_state.pop("exp_upload_digest", None)
        st.session_state.pop("exp_upload_error", None)
        return
    # Shown once per distinct file: a later Generate must not be replaced by
    # the file still sitting in the uploader.
    data = upload.getvalue()
    digest = upload_digest(data)
    if st.session_state.get("exp_upload_digest") == digest:
        return
    st.session_state["exp_upload_digest"] = digest
    try:
        set_result(result_from_upload(data), f"uploaded: {upload.name}")
    except umask.UmaskError as err:
        st.session_state["exp_upload_error"] = str(err)
    else:
        st.session_state.pop("exp_upload_error", None)


def choose_models(result: umask.Result) -> list[str]:
    choices = model_choices()
    # The result's own model when its weights are here; never a download unasked.
    unknown = unknown_model(result.model)  # a newer torchvision may have made the file
    own = None if unknown else weights_available(result.model)
    if unknown:
        st.sidebar.warning(f"{unknown.rstrip('.')}; compare it on the models listed.")
    refused = refused_checkpoint(result.model) if own is not None else None
    if refused:
        own = None
        st.sidebar.warning(f"{refused.rstrip('.')}; compare this result on the models listed.")
    if own is not None and result.model not in choices:
        choices = [result.model, *choices]
    default = [result.model] if own else ([DEFAULT_MODEL] if DEFAULT_MODEL in choices else [])
    return st.sidebar.multiselect("Models to compare", choices, default=default, format_func=model_label,
                                  persist_state="session", key=f"exp_models_{result_id(result)}",
                                  help="Each selected model classifies the same masked image, side by side. " + MODEL_HELP)


def parts_key(rid: str) -> str:
    """The session key of the parts chosen for result ``rid`` (a list of part numbers)."""
    return f"exp_parts_{rid}"


def part_toggles(result: umask.Result, rid: str) -> list[int]:
    """One labelled button per part (any combination on), None and All; returns the parts on, in order.

    Buttons that wrap rather than a grid of checkboxes: in a narrow column (a
    1024 px projector) a checkbox's number is the first thing cut off.
    """
    k = result.k
    key = parts_key(rid)
    st.session_state.setdefault(key, [umask.study_part(k)])

    def set_all(value: bool) -> None:
        st.session_state[key] = list(range(k)) if value else []

    verb = "Hide" if result.mask_mode == "hide" else "Show only"
    chosen = st.pills(f"{verb} parts", list(range(k)), selection_mode="multi", persist_state="session", key=key,
                      help="Click a number, or the part on the image; click again to bring it back.")
    with st.container(horizontal=True, gap="xsmall"):
        st.button("None", key=f"exp_none_{rid}", on_click=set_all, args=(False,))
        st.button("All", key=f"exp_all_{rid}", on_click=set_all, args=(True,))
    return sorted(chosen or [])


def toggle_clicked_part(rid: str, chart_key: str) -> None:
    """A click on the universal image flips that part's button (the buttons stay the one source of truth)."""
    points = st.session_state[chart_key].selection.points
    key = parts_key(rid)
    for point in points[:1]:  # one click selects one point
        part = point["customdata"]
        part = int(part[0] if isinstance(part, list) else part)
        if part < 0:  # a square of the grid that is no part: nothing to hide
            continue
        chosen = list(st.session_state.get(key) or [])
        st.session_state[key] = [p for p in chosen if p != part] if part in chosen else sorted(chosen + [part])
    # A new chart key clears plotly's selection, so the next click on the
    # same part registers again.
    st.session_state["exp_clicks"] = st.session_state.get("exp_clicks", 0) + 1


def describe(result: umask.Result, chosen: list[int]) -> str:
    """"part 5 hidden" / "parts 1, 2 hidden" / "nothing hidden" (or the keep-mode words)."""
    verb = "hidden" if result.mask_mode == "hide" else "visible"
    if not chosen:
        return "nothing hidden" if result.mask_mode == "hide" else "nothing visible"
    if len(chosen) == result.k:
        return f"all parts {verb}"
    listed = ", ".join(str(p) for p in chosen[:12]) + (" ..." if len(chosen) > 12 else "")
    return f"part{'s' if len(chosen) > 1 else ''} {listed} {verb}"


def model_column(result: umask.Result, spec: str, chosen: list[int], mask) -> None:
    """Top-5 of one model on the masked image, and whether it hits the part's target."""
    model = fed_model(result, spec, quiet=True)  # a failure is said under the name, in short
    fed = model.resize_to if model is not None else None
    st.markdown(f"**{spec}**" + (f" (fed at {fed} x {fed})" if fed and fed != result.size else ""))
    if model is None:
        explain_load_failure(spec)
        return
    if weights_changed(model, spec, result):
        st.warning("Its checkpoint file holds other weights than when this image was made, so its answers may "
                   "differ from the saved ones.")
    try:
        outcome = umask.classify_masked(model, result.image, mask, fill=result.fill)
    except Exception as err:  # e.g. the image is too small for this model
        show_error(err)
        return
    top = outcome.top(0, 5)
    names = model.categories
    first, p_first = top[0]
    if len(chosen) == 1:
        part = chosen[0]
        target = result.targets[part]
        hit = first == target
        line = f"{describe(result, chosen)} → '{names[first]}' {percent(p_first, 1)}, " + (
            "target hit" if hit else f"target '{names[target]}' missed")
        (st.success if hit else st.warning)(line)
    else:
        one = "Hide" if result.mask_mode == "hide" else "Show"
        advice = (f"{one} one part to test its target." if not chosen
                  else f"Each target belongs to one part: {one.lower()} one alone to test it.")
        st.info(f"{describe(result, chosen)} → '{names[first]}' {percent(p_first, 1)}. {advice}")
    # The probability as text, as every other number on the pages: a progress
    # column's own format showed "76.66%" and "0%" for a share of 0.3 %.
    st.dataframe(
        [{"class": names[c], "probability": percent(p, 1)} for c, p in top],
        hide_index=True,
        key=f"exp_top_{spec}",
        # Two columns: with a third, two models side by side cut it off on a 1024 px screen.
        column_config={"class": st.column_config.TextColumn("class", width="medium"),
                       "probability": st.column_config.TextColumn("probability", width="small")},
    )
    owned = [f"{names[c]} is part {result.targets.index(c)}'s target" for c, _ in top if c in result.targets]
    st.caption(f"Among these five: {'; '.join(owned)}." if owned else "None of these five is a part's target.")


def summary(result: umask.Result, rid: str, specs: list[str]) -> None:
    """The K x models grid of hits, from classify_parts on every selected model."""
    names, hits, probs, predicted = [], [], [], []
    for spec in specs:
        model = fed_model(result, spec, quiet=True)  # its column shows any error
        if model is None:
            continue

        def every_part(model=model, spec=spec) -> tuple:
            with st.spinner(f"Classifying every part on {spec}..."):
                outcome = umask.classify_parts(model, result.image, result.labels, mode=result.mask_mode,
                                               fill=result.fill, targets=result.targets)
            return outcome.hits, outcome.target_probs, [model.categories[p] for p in outcome.predictions]

        try:
            h, p, pred = session_memo(("parts", rid, spec), every_part)
        except Exception as err:
            if user_sentence(err) is None:
                raise
            continue  # its column says why
        names.append(spec)
        hits.append(h)
        probs.append(p)
        predicted.append(pred)
    if not names:
        return
    rates = " · ".join(f"{n}: {sum(h)}/{len(h)}" for n, h in zip(names, hits))
    st.markdown(f"**Every part on every model** ({rates} masks on target)")
    left_out = [spec for spec in specs if spec not in names]
    if left_out:  # a grid that quietly lost a column reads as a comparison of fewer models
        st.caption(f"Not in the grid: {', '.join(left_out)} (not available here; its column above says why).")
    st.plotly_chart(plots.hit_grid_figure(names, hits, probs, predicted, result.target_names, title=None),
                    key="exp_grid", config={"displayModeBar": False})


def main() -> None:
    st.title("Explore a universal image")
    st.sidebar.header("Explore")
    open_upload()
    result: umask.Result | None = st.session_state.get(RESULT_KEY)
    if st.session_state.get("exp_upload_error"):
        # The page still shows the result it showed: say which, beside the file that failed.
        still = f" The page still shows the result {st.session_state.get(RESULT_SOURCE_KEY)}." if result is not None else ""
        st.sidebar.error(st.session_state["exp_upload_error"] + still)
    if result is None:
        st.markdown(NOTE)
        job = st.session_state.get(JOB_KEY)
        if job is not None and job.alive:
            st.info("A run is going on the **Generate** page: its image comes here when it ends (or when you click "
                    "**Stop** there, which keeps the best image so far).")
        else:
            st.info("No image yet: make one on the **Generate** page, or open a result zip in the sidebar.")
        return
    job = st.session_state.get(JOB_KEY)
    if job is not None and job.alive:
        st.info("A new run is going on the **Generate** page: its image replaces this one when it ends.")
    rid = result_id(result)
    specs = choose_models(result)
    st.caption(
        f"{st.session_state.get(RESULT_SOURCE_KEY, '')} · made for {result.model} · {result.mask_family}, "
        f"K = {result.k}, mode {result.mask_mode}, hidden pixels {fill_label(result.fill)}, {result.size} x {result.size} px · "
        f"{percent(result.success_rate, 0)} on target when saved"
    )
    st.markdown(NOTE)
    # The two pictures side by side and the part buttons under them, full
    # width: beside the pictures they were squeezed to unreadable on a 1024 px
    # projector. The buttons are read first (they decide what is drawn).
    # Bottom-aligned: the two pictures (equal heights, last in each column)
    # sit level however many lines each caption wraps to on a narrow screen.
    image_col, seen_col = st.columns(2, vertical_alignment="bottom")
    chosen = part_toggles(result, rid)
    mask = selection_mask(result.labels, chosen, result.mask_mode)
    seen = apply_masks(result.image, mask, result.fill)[0]
    with image_col:
        verb = "hide or show" if result.mask_mode == "hide" else "show or hide"
        clicks = st.session_state.setdefault("exp_clicks", 0)
        key = f"exp_image_{rid}_{clicks}"
        st.markdown("**The universal image**")
        st.caption(f"Click a part to {verb} it. " + unused_cells_note(result.mask_family, result.k, result.mask_mode))
        st.plotly_chart(plots.image_figure(result.image, result.labels, selected=chosen, clickable=verb, height=PICTURE_HEIGHT),
                        key=key, config={"displayModeBar": False}, selection_mode="points",
                        on_select=functools.partial(toggle_clicked_part, rid, key))
    with seen_col:
        st.markdown("**What the model sees**")
        hidden = describe(result, chosen)
        st.caption(hidden[:1].upper() + hidden[1:] + ".")
        st.plotly_chart(plots.image_figure(seen, None, height=PICTURE_HEIGHT), key="exp_seen", config={"displayModeBar": False})

    if not specs:
        st.info("Select one or more models in the sidebar.")
    else:
        # Two models a row at most: three side by side squeeze each top-5
        # table until its probability bars are cut off on a 1024 px screen.
        for start in range(0, len(specs), MODELS_PER_ROW):
            row = specs[start:start + MODELS_PER_ROW]
            for col, spec in zip(st.columns(min(MODELS_PER_ROW, len(specs))), row):  # one model: the full width
                with col:
                    model_column(result, spec, chosen, mask)
        summary(result, rid, specs)

    st.sidebar.download_button("Download this result (.zip)", result_zip(result), key="exp_download",
                               file_name=zip_name(result), mime="application/zip",
                               on_click="ignore")


main()
