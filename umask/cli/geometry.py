"""``umask geometry``: how close a result's masked copies are to it, and its decision regions.

Prints, per mask k, ||x - m_k x|| in L0 (fraction of values changed), L1, L2
and L-infinity, absolute and relative to ||x|| (same norm), the radius of the
smallest ball centred at x holding every copy (max_k ||x - m_k x||_2) and the
minimal enclosing ball over any centre; then the study's 1.6 % claim measured
on this image. ``--slice I J`` also classifies the plane through x, m_I x and
m_J x and writes it as an interactive HTML map (``--html``).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from ..errors import UmaskError
from ..evaluate import as_fed_for
from ..files import atomic_file, output_path
from ..geometry import SLICE_RESOLUTION, check_slice_copies, check_slice_resolution, claim_rows, decision_slice, result_geometry, slice_side, study_claim
from ..models import load_model
from ..devices import resolve_device
from ..results import check_output_file, load_result
from ..text import count, percent
from .output import echo, format_table, json_text, progress


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a result folder, or a zip of one (the dashboard's download)")
    p.add_argument("--slice", nargs=2, type=int, metavar=("I", "J"), default=None, help="classify the plane through x, m_I x, m_J x")
    p.add_argument("--resolution", type=int, default=None, help=f"slice grid points a side, 3 to 301; an even number is made odd (+1) so that x is a point (default {SLICE_RESOLUTION})")
    p.add_argument("--html", type=output_path, default=None, help="write the slice map here (default: FOLDER-slice-I-J.html beside FOLDER)")
    p.add_argument("--overwrite", action="store_true", help="replace the file already at --html (refused otherwise)")
    p.add_argument("--device", default=None, help="where the slice is classified: cpu (default), cuda or auto")
    p.add_argument("--format", choices=("table", "json"), default="table", help="print tables (default) or everything as JSON")


_pct = functools.partial(percent, digits=3)  # a terminal table: 1/64 reads 1.562 %, not 1.56 %


def run(args: argparse.Namespace) -> int:
    for option, given in (("--html", args.html), ("--resolution", args.resolution), ("--overwrite", args.overwrite or None),
                          ("--device", args.device)):
        if args.slice is None and given is not None:
            raise UmaskError(f"{option} is for the decision-slice map, which only --slice I J computes; add --slice, or drop {option}.")
    if args.html is not None and Path(args.html).suffix.lower() != ".html":
        raise UmaskError(f"--html '{args.html}' must end in .html; the slice map is a web page.")
    if args.resolution is None:
        args.resolution = SLICE_RESOLUTION
    result = load_result(args.folder)
    target = None
    if args.slice is not None:
        check_slice_copies(result.k, *args.slice)  # before the model loads
        check_slice_resolution(args.resolution)
        folder = Path(args.folder).resolve()
        i, j = args.slice
        stem = folder.stem if folder.suffix.lower() == ".zip" else folder.name  # r.zip -> r-slice-0-5.html
        target = Path(args.html) if args.html is not None else folder.parent / f"{stem}-slice-{i}-{j}.html"
        check_output_file(target, reads=(args.folder,), overwrite=args.overwrite)  # fail now, not after classifying the slice
        resolve_device(args.device or "cpu")  # no GPU here: said before the norm tables, not after them
    geo = result_geometry(result)
    size = result.size
    claim = study_claim(result.image, size=size)
    if args.format == "json":
        payload = {"per_mask": geo.table(), "summary": geo.summary(), "image_norms": geo.image_norms, "study_claim": claim}
        if target is not None:
            payload["slice"] = _slice(args, result, target)
        echo(json_text(payload))
        return 0
    # The tables first (milliseconds), then the slice (minutes at a fine
    # resolution): an interrupted slice leaves the figures on the screen.
    rows = [[r["k"], _pct(r["abs_l0"]), f"{r['abs_l1']:.2f}", _pct(r["rel_l1"]), f"{r['abs_l2']:.3f}", _pct(r["rel_l2"]),
             f"{r['abs_linf']:.3f}", _pct(r["rel_linf"])] for r in geo.table()]
    echo(format_table(["mask", "L0 (changed)", "L1", "L1 rel", "L2", "L2 rel", "Linf", "Linf rel"], rows))
    echo(f"\n||x||: L1 {geo.image_norms['l1']:.2f}, L2 {geo.image_norms['l2']:.3f}, Linf {geo.image_norms['linf']:.3f}")
    echo(geo.balls_text(digits=3))
    k = claim["k"]
    echo(f"\nthe study's claim (hstripes K = {k} on {size}x{size}; one part = {_pct(claim['pixel_fraction'])} of the pixels; "
         "hidden pixels 0, the study's m_k x, whatever mode and fill this image was made with), worst mask:")
    table = claim_rows(claim)  # the rows the report and the Geometry page show
    headers = list(table[0])
    echo(format_table(headers, [[row["image"], *(_pct(row[h]) for h in headers[1:-1]), f"{row[headers[-1]]:.3f}"]
                                for row in table]))
    if target is not None:
        sliced = _slice(args, result, target)
        i, j = sliced["copies"]
        echo(f"\nslice through x, m{i} x, m{j} x: {count(len(sliced['classes']), 'class', 'classes')} on a {sliced['resolution']}^2 grid; "
             f"centre (x) -> {sliced['centre_name']} ({sliced['centre_class']}); map: {sliced['html']}")
    return 0


def _slice(args: argparse.Namespace, result, target: Path) -> dict:
    """Classify the decision-region slice, write its map to ``target``; what it found."""
    from ..plots.geometry import slice_figure

    i, j = args.slice
    model = as_fed_for(load_model(result.model, device=args.device or "cpu"), result.model, result)
    with progress(slice_side(args.resolution) ** 2, "slice", unit="point") as bar:
        def hook(done: int, n: int) -> None:
            bar.total = n
            bar.update(done - bar.n)

        sl = decision_slice(model, result.image, result.masks, i=i, j=j, fill=result.fill,
                            resolution=args.resolution, on_progress=hook)
    with atomic_file(target) as fh:
        slice_figure(sl, targets=result.targets).write_html(fh, include_plotlyjs=True)
    return {
        "copies": [i, j],
        "resolution": int(sl.classes.shape[0]),
        "classes": sorted(set(int(c) for c in sl.classes.ravel())),
        "centre_class": int(sl.centre_class),
        "centre_name": model.categories[sl.centre_class],
        "html": str(target),
    }
