"""``umask fgsm``: the classic adversarial example on a photo of your own (FGSM or its iterative form).

The photo is centre-cropped to the model's native size, attacked, rounded to
8 bits inside the eps-ball and saved as a PNG; the predictions printed for
"after" are measured on the saved file, since that is what a user reloads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..attacks import PANDA_EPS, AttackResult, attack, check_eps, check_steps, eight_bit_budget, predict, succeeded, top_predictions
from ..errors import UmaskError
from ..images import describe_crop, load_photo, photo_size, save_png
from ..devices import resolve_device
from ..models import DEFAULT_MODEL, MAX_SIDE, load_model, model_info
from ..files import output_path
from ..results import check_output_file
from ..targets import class_label, resolve_class
from ..text import percent
from .output import echo, progress


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="a JPEG, PNG or WebP photo")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model spec (default {DEFAULT_MODEL}, works offline)")
    p.add_argument("--eps", type=float, default=PANDA_EPS, help=f"L-infinity budget on the [0, 1] scale (default {PANDA_EPS})")
    p.add_argument("--target", default=None, help="target class (name or index); default: untargeted")
    p.add_argument("--steps", type=int, default=1, help="1 = one-step FGSM (default); more = iterative FGSM")
    p.add_argument("--step-size", dest="step_size", type=float, default=None,
                   help="size of each step (default: the budget for one step, 2.5 x budget / steps up to 2/255 otherwise; the "
                        "budget is eps in whole 8-bit levels, floor(eps x 255) / 255, what the saved PNG can hold)")
    p.add_argument("--size", type=int, default=None, help="side of the centre crop fed to the model (default: its native size)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--out", type=output_path, required=True, help="the adversarial image to write (.png)")
    p.add_argument("--overwrite", action="store_true", help="replace the file already at --out (refused otherwise)")


def _advice(result: AttackResult) -> str:
    if eight_bit_budget(result.eps) == 0:  # more steps cannot move a pixel by less than one level
        return "; an 8-bit PNG cannot change by less than 1/255 = 0.0039..., so give --eps 0.004 or more"
    if result.short_walk:  # a larger eps would give the very same image
        return f"; {result.reach}, less than the budget, so try more --steps"
    return "; try more --steps or a larger --eps"


def _outcome(result, reached: bool, target_p: float | None) -> str:
    """The verdict on the saved PNG; for a target, how close it came, and
    whether the photo was that class already (then there was nothing to reach)."""
    if result.target is None:
        return "changed the answer" if reached else "answer unchanged"
    if result.already_target:
        return "the photo was the target class already (the attack keeps it there)" if reached else "target lost"
    return f"reached the target ({percent(target_p, 1)})" if reached else f"target not reached (it has {percent(target_p, 1)})"


def _top1(probs, categories) -> str:
    best = top_predictions(probs, categories, 1)[0]
    return f"{best.name} ({best.index}) {percent(best.probability, 1)}"


def run(args: argparse.Namespace) -> int:
    # Check everything cheap before loading a model or spending a gradient.
    eps = check_eps(args.eps)
    check_steps(args.steps, args.step_size, eps)
    if args.target is not None:
        resolve_class(args.target)
    if args.size is not None and not 1 <= args.size <= MAX_SIDE:
        raise UmaskError(f"--size {args.size} is not allowed; give the side of the crop in pixels, at most {MAX_SIDE} "
                         "(the model sets the least), or leave it out.")
    if args.step_size is not None and args.steps == 1:
        raise UmaskError("--step-size sets the steps of iterative FGSM; one-step FGSM moves by the whole budget: "
                         "drop --step-size, or add --steps N.")
    out = Path(args.out)
    if out.suffix.lower() != ".png":  # ".png" alone is a name with no suffix
        raise UmaskError(f"Output '{args.out}' must be a file name ending in .png (e.g. adversarial.png); "
                         "the adversarial image is saved as an 8-bit PNG.")
    # The inputs first: an --overwrite added for an existing file must not
    # be the step before learning the photo, model or device was wrong.
    resolve_device(args.device)
    model_info(args.model)  # an unknown name, with close ones
    load_photo(args.image, size=None)
    check_output_file(args.out, reads=(args.image,), overwrite=args.overwrite)  # as typed: 'a.png/' is refused; missing folders are made
    model = load_model(args.model, device=args.device)
    if args.size is not None:
        model.check_side(args.size, size_option="--size")  # before the photo is read and cropped
    side = args.size if args.size is not None else model.native_size
    photo = load_photo(args.image, size=side)
    width, height = photo_size(args.image)

    steps = args.steps
    bar = progress(steps, "attack") if steps > 1 else None
    try:
        result = attack(model, photo, eps=eps, target=args.target, steps=steps, step_size=args.step_size,
                        quantise=True, on_step=(lambda _: bar.update(1)) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    save_png(result.adversarial, out)
    # Measure what a user would reload, not the tensor in memory.
    saved = load_photo(out, size=None)
    saved_probs = predict(model, saved)
    after = int(saved_probs.argmax())
    linf = float((saved - result.clean).abs().max())

    goal = "untargeted" if result.target is None else f"target {class_label(result.target, model.categories)}"
    reached = succeeded(after, source=result.source, target=result.target)  # on the saved PNG, not in memory
    rows = [
        ["photo", f"{args.image}, {describe_crop(width, height, side) or f'{side}x{side}, as the model takes it'}"],
        ["model", model.name],
        ["attack", f"{result.method}, {goal}"],
        ["epsilon", f"{eps:g} (8-bit budget {eight_bit_budget(eps) * 255:.0f}/255 = {eight_bit_budget(eps):.4f}); L-inf of the PNG {linf:.4f}"],
        ["before", _top1(result.clean_probs, model.categories)],
        ["after", f"{_top1(saved_probs, model.categories)} (measured on the saved 8-bit PNG)"],
        ["outcome", _outcome(result, reached, float(saved_probs[result.target]) if result.target is not None else None)
         + ("" if reached else _advice(result))],
        ["saved", str(out)],
    ]
    label_width = max(len(label) for label, _ in rows)
    for label, text in rows:
        echo(f"{label.ljust(label_width)}  {text}")
    return 0
