"""``report.html``: one self-contained page about a sweep folder.

Plotly figures are embedded (plotly.js inline once, so the page works offline),
images as base64 PNGs upscaled nearest-neighbour. Sections: summary table,
success rate vs K, time to 100 % vs K, the geometry (norm figures vs K, the
study's 1.6 % claim, per-mask distances of one result, decision-region slices
of the real models), the 2-D toy, and the gallery of universal images.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .errors import UmaskError
from .evaluate import as_fed_for
from .files import atomic_file
from .geometry import CLAIM_COLUMNS, NORM_LABELS, NORMS, SLICE_RESOLUTION, claim_rows, claim_text, decision_slice, result_geometry, study_claim
from .masks import apply_masks, study_part
from .models import Classifier, load_model
from .plots.run import png_data_uri, upscale
from .results import JSON_FILE, Result, load_result
from .sweep import CSV_FILE, gallery_group, read_rows, summary_table, sweep_settings, typed_rows
from .targets import class_label, imagenet_classes
from .text import count, duration, percent
from .toy import SCATTERED_OFFSETS, evenly_spaced, meeting_point, region_map, smallest_disc_with_all_classes

REPORT_FILE = "report.html"
ReportProgress = Callable[[str, int, int], None]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f4f4f4; }
td.l, th.l { text-align: left; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
.card { border: 1px solid #ddd; padding: 6px; font-size: 0.8em; width: 340px; }
.card img { image-rendering: pixelated; width: 160px; height: 160px; }
.note { color: #555; font-size: 0.9em; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 6px 10px; }
"""


@dataclass(frozen=True)
class WrittenReport:
    """What :func:`build_report` wrote: the page, and the run folders of
    results.csv it could not read (left out of its images, named in it)."""

    path: Path
    unreadable: tuple[str, ...] = ()


def _card_png(image: torch.Tensor, *, side: int = 160) -> str:
    """``(3, H, W)`` in [0, 1] -> a data URI of a PNG upscaled nearest-neighbour to about ``side``."""
    return png_data_uri(upscale(image, side=side), optimize=True)


def shown_copy(result: Result) -> tuple[torch.Tensor, str]:
    """The gallery's masked copy of ``result`` and what it shows.

    Returns:
        ``(3, H, W)`` copy with part :func:`umask.masks.study_part` masked, and a line such
        as "part 5 hidden; target goldfish (1), hit".
    """
    part = study_part(result.k)
    masked = apply_masks(result.image, result.masks[part : part + 1], result.fill)[0]
    target, predicted = result.targets[part], result.predictions[part]
    names = imagenet_classes()
    outcome = "hit" if target == predicted else f"predicted {class_label(predicted, names)}"
    how = "hidden" if result.mask_mode == "hide" else "alone"
    return masked, f"part {part} {how}; target {class_label(target, names)}, {outcome}"


def _table(headers: list[str], rows: list[list], left: int = 1) -> str:
    head = "".join(f"<th class='{'l' if i < left else ''}'>{html.escape(str(h))}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td class='{'l' if i < left else ''}'>{html.escape(str(c))}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def claim_table(claim: dict) -> str:
    """The study's 1.6 % claim as an HTML table: which norm gives what."""
    labels = [label for label, _ in CLAIM_COLUMNS]
    return _table(["image", *labels, "radius at x (L2, abs)"],
                  [[r["image"], *(percent(r[label]) for label in labels), f"{r['radius at x (L2, abs)']:.3f}"] for r in claim_rows(claim)])


def _figure_html(fig, first: list[bool]) -> str:
    include = first[0]
    first[0] = False
    # The figures keep tight margins for the dashboard, whose theme grows them to fit
    # the ticks; on a bare page the y ticks and the x labels were cut off.
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig.to_html(full_html=False, include_plotlyjs=include, config={"displaylogo": False})


def _representatives(rows: list[dict]) -> dict[str, dict]:
    """Per model: the run the geometry sections use: a universal image (a run
    that reached 100 %) before one that is not, then hstripes, the largest K,
    the first seed."""
    def score(r: dict) -> tuple:
        return bool(r["succeeded"]), r["mask_family"] == "hstripes", r["k"], -r["seed"]

    best: dict[str, dict] = {}
    for r in rows:
        cur = best.get(r["model"])
        if cur is None or score(r) > score(cur):
            best[r["model"]] = r
    return best


TOY_WIDTH = 480  # px: two maps side by side in a 1000 px window


def _toy_section(first: list[bool]) -> str:
    from .plots.geometry import toy_figure

    parts = []
    for title, offsets in (("Lines meet in one point: every class within any small disc", None),
                           ("Lines do not meet: only a large disc holds every class", list(SCATTERED_OFFSETS[:5]))):
        toy = evenly_spaced(5, offsets=offsets)
        regions = region_map(toy, extent=3.0, resolution=151)
        disc = smallest_disc_with_all_classes(regions)
        # A fixed width: plotly sizes a figure once, to its box as first laid
        # out, and a flex box that settles later left the first map half covered.
        fig = toy_figure(regions, disc=disc, meeting=meeting_point(toy), height=500)
        fig.update_layout(width=TOY_WIDTH)
        # The title above the figure, not in it: in it, it sat under the legend (the disc's radius is there).
        parts.append(f"<div style='width:{TOY_WIDTH}px'><h4>{html.escape(title)}</h4>{_figure_html(fig, first)}</div>")
    return "<div style='display:flex;flex-wrap:wrap;gap:16px'>" + "".join(parts) + "</div>"


def _gallery(out: Path, rows: list[dict], load: Callable[[dict], Result | None]) -> str:
    seen = set()
    groups: dict[tuple, list[str]] = {}
    for r in sorted(rows, key=lambda r: (gallery_group(r), r["k"], r["seed"])):
        key = (*gallery_group(r), r["k"])
        if key in seen:
            continue  # first seed only
        seen.add(key)
        result = load(r)
        if result is None:
            continue
        masked, shows = shown_copy(result)
        caption = (
            f"<b>K = {result.k}</b>, seed {r['seed']}: {percent(result.success_rate, 0)} "
            f"({r['hits']}/{result.k}), {count(result.steps, 'step')}, {duration(result.seconds, tenths=True)}<br>right: {html.escape(shows)}"
        )
        card = (
            f"<div class='card'><img src='{_card_png(result.image)}' alt='universal image'> "
            f"<img src='{_card_png(masked)}' alt='masked copy'><br>{caption}</div>"
        )
        groups.setdefault(key[:5], []).append(card)
    sections = []
    for (model, family, mode, preset, steps), cards in groups.items():
        # Every CSV cell is text someone could have edited: escaped, not trusted as HTML.
        heading = html.escape(f"{model}: {family} / {mode} ({preset}, {steps} steps)")
        sections.append(f"<h3>{heading}</h3><div class='gallery'>{''.join(cards)}</div>")
    return "".join(sections) or "<p>No finished runs yet.</p>"


def build_report(
    out: str | Path,
    *,
    slices: bool = True,
    slice_resolution: int = SLICE_RESOLUTION,
    device: str = "cpu",
    loader: Callable[..., Classifier] = load_model,
    on_progress: ReportProgress | None = None,
    written_by: str = "<code>python -m umask sweep</code>",
) -> WrittenReport:
    """Write ``out/report.html`` from ``out/results.csv`` and the result folders.

    Args:
        slices: classify a decision-region slice per model (loads each model).
        slice_resolution: grid points per side of each slice.
        on_progress: ``(stage, done, total)`` while slices are classified.
        written_by: what wrote it, as HTML (the CLI's command by default).

    Returns:
        The report's path (written atomically) and the run folders it left out.
    """
    from .plots.geometry import distances_figure, slice_figure
    from .plots.study import geometry_figure, success_figure, time_figure

    out = Path(out)
    rows = typed_rows(read_rows(out / CSV_FILE))
    settings = sweep_settings(out)
    # A run folder deleted or damaged since the sweep wrote it: its figures
    # (from the CSV) stay, its images go, and the report says which.
    unreadable: dict[str, str] = {r["folder"]: f"no {JSON_FILE} there" for r in rows
                                  if not (out / r["folder"] / JSON_FILE).is_file()}

    def load(row: dict) -> Result | None:
        if row["folder"] in unreadable:
            return None
        try:
            return load_result(out / row["folder"])
        except UmaskError as err:
            unreadable[row["folder"]] = str(err).rstrip(".")
            return None

    first = [True]
    body: list[str] = []
    models = list(dict.fromkeys(r["model"] for r in rows))
    body.append(
        f"<h1>umask sweep: {html.escape(out.name)}</h1><p class='note'>{count(len(rows), 'finished run')}; models: "
        f"{html.escape(', '.join(models)) or 'none'}; image {html.escape(str(settings.get('size', '?')))} px, fill {html.escape(str(settings.get('fill', '?')))}. "
        f"Written {time.strftime('%Y-%m-%d %H:%M')} by {written_by}.</p>"
    )
    summary = summary_table(rows)
    if summary:
        body.append("<h2>Summary</h2>" + _table(list(summary[0]), [list(s.values()) for s in summary], left=4))
    body.append("<h2>Success rate vs K</h2><p class='note'>Mean over seeds; error bars: standard deviation over seeds.</p>")
    body.append(_figure_html(success_figure(rows), first))
    body.append("<h2>Time to 100 % vs K</h2><p class='note'>Optimisation time (model loading excluded) of the runs that "
                "reached 100 %, and their steps; one line per model and recipe (preset, step budget) when the folder holds several.</p>")
    body.append(_figure_html(time_figure(rows, y="seconds"), first))
    if any(r["succeeded"] for r in rows):  # else the figure above already said that none has
        body.append(_figure_html(time_figure(rows, y="steps"), first))

    body.append("<h2>Geometry: how close the masked copies are</h2>")
    body.append("<p class='note'>For each run, the worst mask's ||x − m_k x|| / ||x|| (L0 is the fraction of the 3·H·W "
                "values that change; L1, L2 relative to ||x|| in the same norm) and the radius of the smallest ball holding "
                "all K copies: centred at x (max_k ||x − m_k x||₂) and over any centre (minimal enclosing ball, Frank-Wolfe "
                "on its dual with certified bounds), both relative to ||x||₂.</p>")
    body.append(_figure_html(geometry_figure(rows), first))
    reps = {}
    for spec, row in _representatives(rows).items():
        result = load(row)
        if result is not None:  # else that model is left out here
            reps[spec] = (row, result)
    if reps:
        model0, (row0, result0) = next(iter(reps.items()))
        size = result0.size
        claim = study_claim(result0.image, size=size)
        k_claim = claim["k"]
        body.append(f"<h3>The study's claim, measured (hstripes, K = {k_claim}, {size} x {size})</h3>")
        body.append("<p>" + html.escape(claim_text(claim)) + "</p>")
        body.append(f"<p class='note'>'This universal image': {html.escape(row0['folder'])} under {k_claim} horizontal stripes.</p>")
        body.append(claim_table(claim))
        geo = result_geometry(result0)
        which = html.escape(f"{model0}, {row0['mask_family']}")
        body.append(f"<h3>Per-mask distances of one result ({which}, K = {row0['k']})</h3>")
        body.append(
            "<p class='note'>"
            + "; ".join(f"{NORM_LABELS[n]}: worst {percent(geo.relative[n].max())}" for n in NORMS)
            + ". " + html.escape(geo.balls_text()) + "</p>"
        )
        body.append(_figure_html(distances_figure(geo), first))

        if slices:
            body.append("<h2>Decision regions near the universal image</h2><p class='note'>The model's predicted class on "
                        "the plane through x and two of its masked copies (axes: L2 distances in pixel space, orthonormal "
                        "directions; the plane is not clamped to [0, 1]). x is the star; the spanning copies are diamonds, "
                        "the others are projected.</p>")
            for spec, (row, result) in reps.items():
                j = max(1, result.k // 2)
                try:
                    model = as_fed_for(loader(spec, device=device), spec, result)  # as the run saw it
                    sl = decision_slice(
                        model, result.image, result.masks, i=0, j=j, fill=result.fill, resolution=slice_resolution,
                        on_progress=(lambda d, t, spec=spec: on_progress(f"slice {spec}", d, t)) if on_progress else None,
                    )
                except UmaskError as err:
                    body.append(f"<p class='note'>{html.escape(spec)}: no slice ({html.escape(str(err))})</p>")
                    continue
                fig = slice_figure(sl, targets=result.targets)
                fig.update_layout(title=dict(text=html.escape(f"{spec}, {row['mask_family']}") + f", K = {row['k']}: plane through x, m0 x, m{j} x", x=0.0))
                body.append(_figure_html(fig, first))
                del model

    body.append("<h2>The study's illustration: linear classes in the plane</h2><p class='note'>Five linear classes. Left: "
                "every boundary line passes through one point, so any disc around it, however small, holds every class "
                "(the universal image's situation). Right: the lines are shifted; the smallest disc that touches every "
                "class (searched on a grid, accurate to a grid step) is large.</p>")
    body.append(_toy_section(first))
    body.append("<h2>Gallery</h2><p class='note'>Left: the universal image; right: its masked copy for part 5, as the "
                "study showed (the last part when K ≤ 5): hidden, or alone in keep mode; each caption says which. "
                "The first seed of each K.</p>")
    body.append(_gallery(out, rows, load))
    if unreadable:
        their = "its images are" if len(unreadable) == 1 else "their images are"
        body.insert(1, f"<p class='warn'>{count(len(unreadable), 'run folder')} of results.csv could not be read, so "
                       f"{their} left out (the figures come from the CSV): "
                       + "; ".join(html.escape(f"{folder}: {why}") for folder, why in unreadable.items()) + ".</p>")

    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>umask sweep report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    target = out / REPORT_FILE
    with atomic_file(target, "w", encoding="utf-8") as fh:
        fh.write(page)
    return WrittenReport(target, tuple(unreadable))
