"""``umask evaluate``: per-mask predictions of a saved result on any models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..evaluate import as_fed_for, classify_parts, weights_changed
from ..models import canonical_spec, load_model, parse_resize
from ..files import atomic_file
from ..results import check_output_file, load_result
from ..targets import imagenet_classes
from .output import echo, format_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a result folder (universal.png, parts.png, result.json)")
    p.add_argument("--models", nargs="+", default=None, help="model specs (default: the model it was made for)")
    p.add_argument("--resize", default=None,
                   help="feed every model at this side, or 'native' (default: the result's own model as it was made, "
                        "the others at the image's size, or native when they cannot take it)")
    p.add_argument("--device", default="cpu", help="where the models run: cpu (default), cuda or auto")
    p.add_argument("--format", choices=("table", "json"), default="table", help="print a table (default) or the JSON report")
    p.add_argument("--json", dest="json_path", default=None, help="also write the JSON report to this file")
    p.add_argument("--overwrite", action="store_true", help="replace the file already at --json (refused otherwise)")


def evaluate_folder(folder: str | Path, models: list[str] | None = None, device: str = "cpu",
                    resize: int | str | None = None) -> dict:
    """The transfer report of a result folder: per model, per mask, what is predicted.

    ``resize`` feeds every model at one side (or "native"); None lets
    :func:`~umask.evaluate.as_fed_for` choose per model. Each model's entry
    says the side it saw (``fed_at``).
    """
    resize = parse_resize(resize)
    result = load_result(folder)
    report = {"folder": str(folder), "k": result.k, "size": result.size, "targets": list(result.targets), "models": {}}
    for spec in [canonical_spec(m) for m in models] if models else [result.model]:
        if resize is None:
            model = as_fed_for(load_model(spec, device=device), spec, result)
        else:
            model = load_model(spec, resize_to=resize, device=device)
            model.check_side(result.size, resize_option="--resize native")
        outcome = classify_parts(model, result.image, result.labels, mode=result.mask_mode, fill=result.fill, targets=result.targets)
        changed = weights_changed(model, spec, result)
        report["models"][spec] = {
            "fed_at": model.resize_to or result.size,
            "predictions": list(outcome.predictions),
            "prediction_names": [model.categories[p] for p in outcome.predictions],
            "target_probs": [round(p, 6) for p in outcome.target_probs],
            "hits": list(outcome.hits),
            "success_rate": outcome.success_rate,
        } | ({"weights_changed": True} if changed else {})
    report["target_names"] = list(result.target_names) or [imagenet_classes()[t] for t in result.targets]
    return report


def run(args: argparse.Namespace) -> int:
    if args.json_path is not None:  # '' too: refused there, not skipped
        check_output_file(args.json_path, reads=(args.folder,), overwrite=args.overwrite)  # fail now, not after loading and running the models
    report = evaluate_folder(args.folder, args.models, args.device, args.resize)
    for spec, entry in report["models"].items():
        if entry.get("weights_changed"):  # on stderr: stdout may be the JSON report
            sys.stderr.write(f"umask: warning: the checkpoint {spec.split('=', 1)[1]} holds other weights than when this "
                             "result was made (its SHA-256 differs); its predictions need not repeat the saved ones.\n")
    text = json.dumps(report, indent=2)
    if args.json_path is not None:
        with atomic_file(args.json_path) as fh:
            fh.write(text + "\n")
    if args.format == "json":
        echo(text)
        return 0
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
            row.append(f"hit: {m['prediction_names'][k]} {p:.0%}" if m["hits"][k]
                       else f"miss: {m['prediction_names'][k]} (target {p:.0%})")
        rows.append(row)
    rows.append(["", "success"] + [f"{report['models'][s]['success_rate']:.0%}" for s in names])
    echo(format_table(headers, rows))
    return 0
