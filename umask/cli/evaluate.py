"""``umask evaluate``: per-mask predictions of a saved result on any models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..evaluate import classify_parts
from ..models import load_model
from ..files import atomic_file, check_writable
from ..results import load_result
from ..targets import imagenet_classes
from .output import echo, format_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="classify a saved result's masked copies on one or more models", description=__doc__)
    p.add_argument("folder", help="a result folder (universal.png, parts.png, result.json)")
    p.add_argument("--models", nargs="+", default=None, help="model specs (default: the model it was made for)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--format", choices=("table", "json"), default="table", help="what to print")
    p.add_argument("--json", dest="json_path", default=None, help="also write the JSON report to this file")
    p.set_defaults(run=run)


def evaluate_folder(folder: str | Path, models: list[str] | None = None, device: str = "cpu") -> dict:
    """The transfer report of a result folder: per model, per mask, what is predicted."""
    result = load_result(folder)
    report = {"folder": str(folder), "k": result.k, "targets": list(result.targets), "models": {}}
    for spec in models or [result.model]:
        model = load_model(spec, resize_to=result.resize_to, device=device)
        outcome = classify_parts(model, result.image, result.labels, mode=result.mask_mode, fill=result.fill, targets=result.targets)
        report["models"][spec] = {
            "predictions": list(outcome.predictions),
            "prediction_names": [model.categories[p] for p in outcome.predictions],
            "target_probs": [round(p, 6) for p in outcome.target_probs],
            "hits": list(outcome.hits),
            "success_rate": outcome.success_rate,
        }
    report["target_names"] = list(result.target_names) or [imagenet_classes()[t] for t in result.targets]
    return report


def run(args: argparse.Namespace) -> int:
    if args.json_path:
        check_writable(args.json_path)  # fail now, not after loading and running the models
    report = evaluate_folder(args.folder, args.models, args.device)
    text = json.dumps(report, indent=2)
    if args.json_path:
        with atomic_file(args.json_path) as fh:
            fh.write(text)
    if args.format == "json":
        echo(text)
        return 0
    names = list(report["models"])
    headers = ["part", "target"] + names
    rows = []
    for k, (t, tname) in enumerate(zip(report["targets"], report["target_names"])):
        row = [k, f"{tname} ({t})"]
        for spec in names:
            m = report["models"][spec]
            mark = "hit" if m["hits"][k] else "miss"
            row.append(f"{m['prediction_names'][k]} {m['target_probs'][k]:.0%} {mark}")
        rows.append(row)
    rows.append(["", "success"] + [f"{report['models'][s]['success_rate']:.0%}" for s in names])
    echo(format_table(headers, rows))
    return 0
