"""``umask generate``: optimise one universal image and save its result folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..config import OPTIMIZERS, PRESETS, Config
from ..errors import UmaskError
from ..masks import FAMILIES, MODES, load_layout, num_parts, parse_fill, part_map_side
from ..devices import resolve_device
from ..models import DEFAULT_MODEL, load_model, model_info
from ..optimise import UniversalSearch
from ..files import output_path
from ..results import JSON_FILE, Result, check_result_folder, load_result, save_result
from ..targets import class_label
from ..text import count, duration, percent
from . import interrupt_code
from .output import echo, format_table, progress, status


def _by_preset(knob: str) -> str:
    """What each preset sets ``knob`` to, for --help: "fast: adam, seed: sgd"."""
    return ", ".join(f"{name}: {getattr(Config.preset(name), knob)}" for name in PRESETS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL}, works offline)")
    p.add_argument("--masks", dest="mask_family", choices=FAMILIES, default=None, help="part layout (default grid)")
    p.add_argument("--k", type=int, default=None, help="number of masks = target classes (default 10)")
    p.add_argument("--mode", dest="mask_mode", choices=MODES, default=None, help="hide part k (default) or keep only part k")
    p.add_argument("--fill", default=None, help="value of hidden pixels: 0 black (default), 0.5 grey, or 'mean'")
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default 64, as the study; with --layout, the map's side)")
    p.add_argument("--layout", dest="layout_path", default=None, help="part-map PNG for --masks custom (value k+1 = part k; it gives K and --size unless they are given)")
    p.add_argument("--layout-seed", type=int, default=None, help="seed of the random layout")
    p.add_argument("--targets", nargs="+", default=None, help="K target classes by name or index (default: random with --seed)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="fast", help="fast (umask's default) or seed (the study's recipe)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help=f"optimiser (default: the preset's, {_by_preset('optimizer')})")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default: the preset's, {_by_preset('lr')})")
    p.add_argument("--adam-beta2", dest="adam_beta2", type=float, default=None, help="Adam's second-moment decay (default 0.9)")
    p.add_argument("--no-balance", action="store_true",
                   help="sum the masked copies' gradients as they come (the study) instead of at equal length")
    p.add_argument("--streak-scale", dest="streak_scale", type=float, default=None,
                   help="a mask missing for n steps in a row pulls 1 + n/S times as hard (default 10; 0 = off)")
    p.add_argument("--steps", type=int, default=None, help=f"step budget (default: the preset's, {_by_preset('steps')})")
    p.add_argument("--margin", dest="stop_margin", type=float, default=None, help="stop only when each target leads by this probability")
    p.add_argument("--no-stop", action="store_true", help="run all steps even after 100%% success")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the random targets, and of the starting noise of --preset seed (fast starts from grey; default 0)")
    p.add_argument("--device", default=None, help="cpu (default), cuda or auto")
    p.add_argument("--resize", dest="resize_to", default=None, help="feed the model at this side, or 'native'")
    p.add_argument("--out", type=output_path, required=True, help="result folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace the result already in --out (refused otherwise)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config the flags ask for: the preset, with every given flag on top."""
    names = (
        "model mask_family k mask_mode fill size layout_path layout_seed optimizer lr adam_beta2 streak_scale steps stop_margin seed device resize_to"
    ).split()
    overrides = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if "fill" in overrides:
        overrides["fill"] = parse_fill(overrides["fill"])
    if getattr(args, "no_balance", False):
        overrides["balance_masks"] = False
    if getattr(args, "no_stop", False):
        if args.stop_margin is not None:  # the margin is a condition for stopping, which --no-stop never does
            raise UmaskError("--margin sets when a run stops at 100 %, and --no-stop runs every step; drop one of them.")
        overrides["stop_at_success"] = False
    if args.mask_family == "custom" and args.layout_path:
        # The part map says how large the image is and how many parts there are, unless told.
        side = part_map_side(args.layout_path) if "size" not in overrides else None
        if side is not None:
            overrides["size"] = side
        if args.k is None:
            overrides["k"] = num_parts(load_layout(args.layout_path, overrides.get("size", Config.size)))
    if args.targets:
        overrides.setdefault("k", len(args.targets))
        overrides["targets"] = tuple(args.targets)
    config = Config.preset(args.preset, **overrides)
    if args.layout_seed is not None and config.mask_family != "random":
        raise UmaskError(f"--layout-seed seeds the random layout; the '{config.mask_family}' layout has none: "
                         "drop --layout-seed, or add --masks random.")
    if args.seed is not None and args.targets and config.init != "noise":
        # Retrying hard targets with new seeds would run the very same search each time.
        raise UmaskError(f"--seed draws random targets and the starting noise of --preset seed; with --targets and "
                         f"the {args.preset} preset (which starts from grey) it changes nothing: drop --seed, or add --preset seed.")
    if args.adam_beta2 is not None and config.optimizer != "adam":
        raise UmaskError(f"--adam-beta2 sets Adam's second-moment decay, but the optimiser here is {config.optimizer}; "
                         "drop --adam-beta2, or add --optimizer adam.")
    if (args.streak_scale or 0) > 0 and not config.balance_masks:
        raise UmaskError("--streak-scale acts through gradient balancing, which is off here (--no-balance, or the "
                         "study's preset); drop --streak-scale, or run with balancing.")
    return config


def per_mask_table(result: Result, categories) -> str:
    rows = []
    for k, (t, p, prob) in enumerate(zip(result.targets, result.predictions, result.target_probs)):
        rows.append([k, class_label(t, categories), class_label(p, categories), percent(prob, 1), "hit" if p == t else "miss"])
    return format_table(["part", "target", "prediction", "p(target)", ""], rows)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if not args.out.strip():  # Path("") would be the current folder
        raise UmaskError("--out is empty; give the folder to write the result to, e.g. --out runs/first.")
    out = Path(args.out)
    resolve_device(config.device)  # the inputs before the output: an unknown model or
    model_info(config.model)  # device is not learnt only after --out is mended
    check_result_folder(out)  # fail now, not after a long run
    if (out / JSON_FILE).exists() and not args.overwrite:
        # A demo image made earlier must not vanish under a quick test run.
        raise UmaskError(f"'{out}' already holds a result; give a new --out, or add --overwrite to replace it.")
    model = load_model(config.model, resize_to=config.resize_to, device=config.device)
    model.check_side(config.size, resize_option="--resize native", size_option="--size")  # the search checks too, but cannot name the option
    search = UniversalSearch(model, config)
    interrupted: KeyboardInterrupt | None = None  # Ctrl-C or SIGTERM (umask.cli.Terminated)
    status(f"{config.model}: {config.mask_family} K={config.k}, {config.mask_mode}, {config.size} x {config.size}, "
           f"up to {count(config.steps, 'step')}" + (", stops at 100 %" if config.stop_at_success else ""))
    # A short label: the bar fits an 80-column terminal with its success rate and ETA.
    with progress(config.steps, f"{config.mask_family} K={config.k}") as bar:
        try:
            for report in search:
                # The figures first: update() draws the line, and it must show this step's.
                # success: this step's; best: the best step so far, whose image is the one saved.
                bar.set_postfix_str(f"success={percent(report.success_rate, 0)}, best={percent(report.best_success_rate, 0)}", refresh=False)
                bar.update(1)
        except KeyboardInterrupt as err:
            interrupted = err
    result = search.result()
    if interrupted and result.steps == 0:
        echo(f"\ninterrupted before the first step; nothing saved to {out}/")
        return interrupt_code(interrupted)
    earlier = _better_earlier_result(out, result) if interrupted else None
    if earlier is not None:
        echo(
            f"\ninterrupted after {count(result.steps, 'step')} at {percent(result.success_rate, 0)}; kept the earlier result in "
            f"{out}/ (the same model, masks and targets), which reaches {percent(earlier.success_rate, 0)}"
        )
        return interrupt_code(interrupted)
    if not args.overwrite and (out / JSON_FILE).exists():
        # Another run saved into --out while this one ran: keep both.
        taken, out = out, _free_sibling(out)
        echo(f"\n'{taken}' received another result while this run went on; this one goes to {out}/ instead")
    save_result(result, out)
    echo(per_mask_table(result, model.categories))
    state = "interrupted; best image so far" if interrupted else (f"reached {percent(1.0, 0)}" if search.succeeded else "step budget used")
    echo(
        f"\nsuccess {percent(result.success_rate, 0)} ({result.hit_count}/{result.k} masked copies with their target as the top-1 class) "
        f"on the saved 8-bit image after {count(result.steps, 'step')}, {duration(result.seconds, tenths=True)} ({state}); saved to {out}/"
    )
    return interrupt_code(interrupted) if interrupted else 0


def _free_sibling(out: Path) -> Path:
    """``out-2``, ``out-3``, ...: the first that does not exist."""
    n = 2
    while out.with_name(f"{out.name}-{n}").exists():
        n += 1
    return out.with_name(f"{out.name}-{n}")


def _better_earlier_result(out: Path, result: Result) -> Result | None:
    """The result --overwrite would replace, if it is the same experiment (model
    and how it is fed, the very part layout, mode, fill, targets) and scores higher than the interrupted run: a Ctrl-C
    just after starting again must not trade a finished image for a few steps'
    noise. Another experiment is what --overwrite asked for, and is saved."""
    if not (out / JSON_FILE).exists():
        return None
    try:
        earlier = load_result(out)
    except UmaskError:
        return None  # unreadable: nothing worth keeping
    same = (earlier.model, earlier.resize_to, earlier.mask_family, earlier.mask_mode, earlier.size, earlier.targets,
            earlier.fill) == (result.model, result.resize_to, result.mask_family, result.mask_mode, result.size,
                              result.targets, result.fill)
    # The parts themselves: another --layout-seed or --layout is another experiment.
    same = same and torch.equal(earlier.labels, result.labels)
    return earlier if same and earlier.success_rate > result.success_rate else None
