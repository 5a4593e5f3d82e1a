"""``umask evaluate``: per-mask predictions of a saved result on any models."""

from __future__ import annotations

import argparse

from ..errors import UmaskError
from ..evaluate import transfer_report
from ..files import atomic_file, output_path
from ..results import check_output_file
from ..text import percent
from .output import echo, format_table, json_text, left_out, status


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a result folder (universal.png, parts.png, result.json), or a zip of one")
    p.add_argument("--models", nargs="+", default=None, help="model specs (default: the model it was made for)")
    p.add_argument("--resize", default=None,
                   help="feed every model at this side, or 'native' (default: the result's own model as it was made, "
                        "the others at the image's size, or native when they cannot take it)")
    p.add_argument("--device", default="cpu", help="where the models run: cpu (default), cuda or auto")
    p.add_argument("--format", choices=("table", "json"), default="table", help="print a table (default) or the JSON report")
    p.add_argument("--json", dest="json_path", type=output_path, default=None, help="also write the JSON report to this file")
    p.add_argument("--overwrite", action="store_true", help="replace the file already at --json (refused otherwise)")
    p.add_argument("--skip-missing", action="store_true",
                   help="leave out models that cannot load here (weights not downloaded offline) and evaluate the others")


def run(args: argparse.Namespace) -> int:
    if args.overwrite and args.json_path is None:
        raise UmaskError("--overwrite replaces the file at --json, and there is no --json here; drop --overwrite, or add --json FILE.")
    if args.json_path is not None:  # '' too: refused there, not skipped
        check_output_file(args.json_path, reads=(args.folder,), overwrite=args.overwrite)  # fail now, not after loading and running the models
    report = transfer_report(args.folder, args.models, args.device, args.resize, skip_unavailable=args.skip_missing)
    for spec, why in report.get("unavailable", {}).items():  # on stderr: stdout may be the JSON report
        status(left_out(spec, why))
    for spec, entry in report["models"].items():
        if entry.get("weights_changed"):  # on stderr: stdout may be the JSON report
            status(f"umask: warning: the checkpoint {spec.split('=', 1)[1]} holds other weights than when this "
                   "result was made (its SHA-256 differs); its predictions need not repeat the saved ones.")
    text = json_text(report)
    if args.json_path is not None:
        with atomic_file(args.json_path) as fh:
            fh.write(text + "\n")
    if args.format == "json":
        echo(text)
        if args.json_path is not None:  # on stderr: stdout is the JSON report
            status(f"json: {args.json_path}")
        return 0
    for spec, entry in report["models"].items():
        if entry.get("matches_saved") is False:  # on stderr: stdout may be the JSON report
            parts = [k for k, (p, s) in enumerate(zip(entry["predictions"], report["saved_predictions"])) if p != s]
            listed = ", ".join(map(str, parts[:10])) + (" ..." if len(parts) > 10 else "")
            status(f"umask: warning: {spec} does not repeat the predictions saved in result.json "
                   f"({'part ' + listed + ' differs' if len(parts) == 1 else 'parts ' + listed + ' differ'}).")
    names = list(report["models"])
    side = report["size"]
    headers = ["part", "target"] + [
        s if report["models"][s]["fed_at"] == side else f"{s} (at {report['models'][s]['fed_at']} px)" for s in names
    ]
    rows = []
    for k, (t, tname) in enumerate(zip(report["targets"], report["target_names"])):
        row = [k, f"{tname} ({t})"]
        for spec in names:
            m = report["models"][spec]
            # A miss shows what was predicted and how far the target is: the
            # probability belongs to the target, not to the prediction beside it.
            p = m["target_probs"][k]
            row.append(f"hit: {m['prediction_names'][k]} {percent(p, 1)}" if m["hits"][k]
                       else f"miss: {m['prediction_names'][k]} (target {percent(p, 1)})")
        rows.append(row)
    rows.append(["", "success"] + [percent(report['models'][s]['success_rate'], 0) for s in names])
    echo(format_table(headers, rows))
    same = [s for s in names if report["models"][s].get("matches_saved")]
    if same:
        echo(f"\n{same[0]}, fed as the result was made, repeats the saved predictions exactly.")
    for spec in names:
        entry = report["models"][spec]
        if "made_at" in entry:
            echo(f"\n{spec} saw the image at {entry['fed_at']} px, not at the {entry['made_at']} px it was made at, so its "
                 "predictions are not compared with the saved ones; without --resize they are.")
    if args.json_path is not None:  # as geometry ends with "map: FILE"
        echo(f"json: {args.json_path}")
    return 0
