"""The classic adversarial example: FGSM and its iterative form (BIM / PGD without a random start).

A photo ``x`` (pixels in [0, 1]) plus a perturbation no larger than ``eps`` in
every pixel (the L-infinity ball) changes a frozen classifier's answer:

* untargeted FGSM (Goodfellow et al. 2015): ``x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)``
  where ``y`` is the model's own clean prediction (no ground truth needed);
* targeted FGSM: ``x_adv = clip(x - eps * sign(grad_x CE(f(x), t)), 0, 1)``: a step *down*
  the loss of the target class ``t``;
* iterative (Kurakin et al.'s BIM, Madry et al.'s PGD without random start):
  ``steps`` such steps of size ``step_size``, each followed by a projection
  back into the eps-ball around ``x`` and into [0, 1].

Every function here is pure: the model stays frozen (no gradient ever reaches
its weights), inputs are never modified, one image is a batch of one.

Shapes: an image is ``(3, H, W)`` float in [0, 1]; probabilities are
``(classes,)``. The model is a :class:`~umask.models.Classifier`, which
normalises internally.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import UmaskError
from .images import eight_bit_levels, quantise as quantise_image
from .models import Classifier
from .targets import resolve_class

log = logging.getLogger(__name__)

# The eps of the famous panda example (Goodfellow et al. 2015) on the [0, 1] scale.
PANDA_EPS = 0.007


@dataclass(frozen=True)
class Prediction:
    """One line of a top-k list: class index, its name, its probability in [0, 1]."""

    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class AttackResult:
    """What an attack did to one photo.

    Attributes:
        clean: ``(3, H, W)`` the photo in [0, 1].
        adversarial: ``(3, H, W)`` the attacked photo in [0, 1]; on the 8-bit
            grid when ``quantised``.
        clean_probs, adversarial_probs: ``(classes,)`` softmax outputs.
        categories: the model's class names, index i = class i.
        eps: the L-infinity budget on the [0, 1] scale.
        steps: 1 for FGSM, more for the iterative form.
        step_size: the size of each step (``eps`` for FGSM).
        target: the target class, or ``None`` for an untargeted attack.
        source: the clean top-1 class, the label an untargeted attack moves away from.
        quantised: whether ``adversarial`` was rounded to 8 bits (inside the eps-ball).
    """

    clean: torch.Tensor
    adversarial: torch.Tensor
    clean_probs: torch.Tensor
    adversarial_probs: torch.Tensor
    categories: tuple[str, ...]
    eps: float
    steps: int
    step_size: float
    target: int | None
    source: int
    quantised: bool

    @property
    def perturbation(self) -> torch.Tensor:
        """``(3, H, W)`` adversarial - clean, in [-eps, eps]."""
        return self.adversarial - self.clean

    @property
    def linf(self) -> float:
        """The largest change of any pixel channel, on the [0, 1] scale (at most ``eps``)."""
        return float(self.perturbation.abs().max())

    @property
    def budget(self) -> float:
        """The L-infinity ball the attack walked in: ``eps``, or its whole
        8-bit levels (:func:`eight_bit_budget`) when ``quantised``."""
        return attack_budget(self.eps, quantise=self.quantised)

    @property
    def short_walk(self) -> bool:
        """Whether the steps cannot reach the edge of the ball
        (``steps * step_size`` below :attr:`budget`): a larger eps then
        changes nothing, more steps may."""
        return self.steps * self.step_size < self.budget - 1e-9

    @property
    def already_target(self) -> bool:
        """Whether the photo already was the target class: nothing to reach,
        the attack only makes the model surer."""
        return self.target is not None and self.target == self.source

    @property
    def reach(self) -> str:
        """How far the steps can move a pixel, in words, for advice when
        :attr:`short_walk` ("5 steps of 0.00784 move a pixel by at most 0.0392")."""
        return f"{self.steps} steps of {self.step_size:.3g} move a pixel by at most {self.steps * self.step_size:.3g}"

    @property
    def method(self) -> str:
        """The attack in words ("one-step FGSM", "iterative FGSM, 10 steps of 0.00784"),
        as the CLI's table and the dashboard's caption both say it."""
        return "one-step FGSM" if self.steps == 1 else f"iterative FGSM, {self.steps} steps of {self.step_size:.3g}"

    @property
    def adversarial_top1(self) -> int:
        return int(self.adversarial_probs.argmax())

    @property
    def success(self) -> bool:
        """See :func:`succeeded`, for the adversarial image in memory."""
        return succeeded(self.adversarial_top1, source=self.source, target=self.target)

    def top_clean(self, k: int = 5) -> list[Prediction]:
        return top_predictions(self.clean_probs, self.categories, k)

    def top_adversarial(self, k: int = 5) -> list[Prediction]:
        return top_predictions(self.adversarial_probs, self.categories, k)


# ------------------------------------------------------------- checking ---


def succeeded(top1: int, *, source: int, target: int | None) -> bool:
    """Whether an attack worked: untargeted, the top-1 class is no longer the
    clean one (``source``); targeted, the top-1 class is the target."""
    return top1 != source if target is None else top1 == target


def _check_image(model: Classifier, image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise UmaskError(f"An image must be a (3, H, W) tensor; got {shape}.")
    if not torch.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0:
        raise UmaskError("Image pixels must be finite and lie in [0, 1].")
    for side in sorted(set(image.shape[1:])):  # both: a fixed-size model takes its square only
        model.check_side(side)
    return image.detach().float().to(model.device)


def check_eps(eps: float) -> float:
    """``eps`` as a float in [0, 1]; raises :class:`UmaskError` otherwise."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise UmaskError(f"Epsilon '{eps}' is not a number; give a value between 0 and 1 (pixels are in [0, 1]).") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UmaskError(f"Epsilon {eps} is out of range; it must lie between 0 and 1 (pixels are in [0, 1], e.g. 0.007).")
    return value


#: The most steps of iterative FGSM: a few hundred reach any target; 10,000
#: are about 25 minutes of the bundled model on a laptop CPU, more is a typo.
MAX_ATTACK_STEPS = 10_000


#: The largest automatic step of the iterative form, 2/255 (two 8-bit
#: levels). Larger sign steps overshoot and the target's probability swings
#: from step to step: on the bundled model and the cat photo, 20 targets, on
#: the saved PNG, eps 0.1 reached 18 of 20 in 10 steps of 0.0245 and 20 with
#: this cap, 11 against 14 in 5 steps; eps 0.03 in 5 steps, 8 against 13.
MAX_AUTO_STEP = 2 / 255


def check_steps(steps: int, step_size: float | None, eps: float) -> tuple[int, float]:
    """``(steps, step size)`` of an attack with budget ``eps``, defaults filled in; raises :class:`UmaskError` on bad values."""
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= MAX_ATTACK_STEPS:
        raise UmaskError(f"Steps = {steps} is not allowed; give a whole number from 1 (one-step FGSM) to "
                         f"{MAX_ATTACK_STEPS:,} (iterative).")
    steps = int(steps)
    if step_size is None:
        # FGSM takes the whole budget at once; the iterative form uses Madry et
        # al.'s 2.5 * eps / steps, so the walk can reach the edge of the ball
        # and still turn around, but never more than MAX_AUTO_STEP a step
        # (then only steps x MAX_AUTO_STEP of the ball is reached: short_walk).
        return steps, eps if steps == 1 else min(2.5 * eps / steps, MAX_AUTO_STEP)
    try:
        size = float(step_size)
    except (TypeError, ValueError):
        raise UmaskError(f"Step size '{step_size}' is not a number; give a positive value such as 0.002.") from None
    if not math.isfinite(size) or size <= 0.0:
        raise UmaskError(f"Step size {step_size} is not allowed; it must be a positive number such as 0.002.")
    return steps, size


def _check_target(model: Classifier, target: int | str | None) -> int | None:
    if target is None:
        return None
    index = resolve_class(target)
    if index >= len(model.categories):
        raise UmaskError(f"Class {index} does not exist for {model.name}, which has {len(model.categories)} classes.")
    return index


# ------------------------------------------------------------ the maths ---


@torch.no_grad()
def predict(model: Classifier, image: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities ``(classes,)`` of one ``(3, H, W)`` image in [0, 1]."""
    image = _check_image(model, image)
    return model.probabilities(image.unsqueeze(0))[0].cpu()


def top_predictions(probs: torch.Tensor, categories: tuple[str, ...] | list[str], k: int = 5) -> list[Prediction]:
    """The ``k`` most probable classes of ``probs`` ``(classes,)``, most probable first."""
    values, indices = probs.topk(min(k, probs.numel()))
    return [Prediction(int(i), categories[int(i)], float(v)) for v, i in zip(values, indices)]


def input_gradient(model: Classifier, image: torch.Tensor, label: int) -> torch.Tensor:
    """``grad_x CE(f(x), label)``: ``(3, H, W)``, the direction that makes ``label`` less likely.

    Only the input needs a gradient: the classifier is frozen, so autograd
    never touches (or allocates for) its weights.
    """
    x = image.detach().unsqueeze(0).requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), torch.tensor([label], device=x.device))
        (grad,) = torch.autograd.grad(loss, x)
    return grad[0]


def _step(model: Classifier, x: torch.Tensor, label: int, size: float, targeted: bool) -> torch.Tensor:
    # Untargeted: climb the loss of the clean label. Targeted: descend the loss of the target.
    direction = input_gradient(model, x, label).sign()
    return x - size * direction if targeted else x + size * direction


def _project(x: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Back into the eps-ball around ``clean`` and into the image cube [0, 1]."""
    return torch.minimum(torch.maximum(x, clean - eps), clean + eps).clamp(0.0, 1.0)


def fgsm(model: Classifier, image: torch.Tensor, *, eps: float, target: int | str | None = None, label: int | None = None) -> torch.Tensor:
    """One-step FGSM: ``(3, H, W)`` in [0, 1] -> ``(3, H, W)`` in [0, 1], within ``eps`` of ``image``.

    Args:
        model: a frozen classifier.
        image: the photo, ``(3, H, W)`` in [0, 1].
        eps: the L-infinity budget in [0, 1] (0.007 is the panda example's).
        target: a class name or index for a targeted attack; ``None`` for untargeted.
        label: for an untargeted attack, the class to move away from (default:
            the model's own clean prediction).

    Raises:
        UmaskError: eps outside [0, 1], an unknown target class or a malformed image.
    """
    return iterative_fgsm(model, image, eps=eps, steps=1, step_size=None, target=target, label=label)


def iterative_fgsm(
    model: Classifier,
    image: torch.Tensor,
    *,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    target: int | str | None = None,
    label: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Iterative FGSM (BIM): ``steps`` signed-gradient steps, each projected to the eps-ball and [0, 1].

    Args:
        model, image, eps, target, label: as in :func:`fgsm`.
        steps: number of steps (1 = FGSM).
        step_size: the size of each step on the [0, 1] scale; default ``eps``
            for one step, else ``2.5 * eps / steps`` up to :data:`MAX_AUTO_STEP`.
        on_step: called with the step number (1-based) after each step, e.g.
            to advance a progress bar.

    Returns:
        ``(3, H, W)`` in [0, 1] on the model's device, with
        ``max |x_adv - image| <= eps``.

    Raises:
        UmaskError: bad eps, steps, step size, target class or image.
    """
    eps = check_eps(eps)
    steps, size = check_steps(steps, step_size, eps)
    clean = _check_image(model, image)
    goal = _check_target(model, target)
    if goal is None and label is None:
        label = int(predict(model, clean).argmax())
    x = clean.clone()
    if eps == 0.0:
        return x  # nothing may move; skip the gradients
    for step in range(1, steps + 1):
        x = _project(_step(model, x, goal if goal is not None else label, size, goal is not None), clean, eps)
        if on_step is not None:
            on_step(step)
    return x.detach()


def eight_bit_budget(eps: float) -> float:
    """The largest change an 8-bit image can make within ``eps``: ``floor(eps * 255) / 255``."""
    # The tolerance lets eps = 2/255, given as a float, mean two whole levels.
    return math.floor(check_eps(eps) * 255.0 + 1e-6) / 255.0


def attack_budget(eps: float, *, quantise: bool) -> float:
    """The ball an attack walks in: ``eps``, or with ``quantise`` the whole
    8-bit levels within it. An 8-bit file can only hold whole levels, so the
    walk stays inside the ball it will be rounded into: rounding then moves a
    pixel by at most half a level instead of undoing steps the budget cannot keep."""
    return eight_bit_budget(eps) if quantise else eps


def quantise_in_ball(adversarial: torch.Tensor, clean: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Round ``adversarial`` to the 8-bit grid without leaving the eps-ball of the 8-bit ``clean``.

    Plain rounding can overshoot the budget by up to half a level (0.007 is
    1.785 levels: rounding gives 2 levels = 0.0078). So the pixel is rounded,
    then clamped to the levels that lie within ``eps`` of the 8-bit original.
    The effective budget on disk is therefore ``floor(eps * 255) / 255``; an
    eps below 1/255 cannot change an 8-bit pixel at all.

    Args:
        adversarial, clean: ``(3, H, W)`` in [0, 1].
        eps: the L-infinity budget.

    Returns:
        ``(3, H, W)`` values k / 255 with ``max |result - quantise(clean)| <= eps``.
    """
    levels = round(eight_bit_budget(eps) * 255.0)
    base = eight_bit_levels(clean.detach())
    rounded = eight_bit_levels(adversarial.detach())
    return torch.minimum(torch.maximum(rounded, base - levels), base + levels).clamp(0.0, 255.0) / 255.0


def attack(
    model: Classifier,
    image: torch.Tensor,
    *,
    eps: float,
    target: int | str | None = None,
    steps: int = 1,
    step_size: float | None = None,
    quantise: bool = False,
    clean_probs: torch.Tensor | None = None,
    on_step: Callable[[int], None] | None = None,
) -> AttackResult:
    """Attack one photo and classify it before and after: the whole demonstration in one call.

    Args:
        model: a frozen classifier.
        image: the photo, ``(3, H, W)`` in [0, 1] (see :func:`umask.images.load_photo`;
            with ``quantise``, an image off the 8-bit grid is rounded to it first).
        eps: the L-infinity budget in [0, 1].
        target: class name or index (targeted), or ``None`` (untargeted: away
            from the model's clean top-1).
        steps: 1 = FGSM; more = the iterative form.
        step_size: per-step size (default: see :func:`iterative_fgsm`).
        quantise: attack within the 8-bit budget :func:`eight_bit_budget` and
            round the result to 8 bits inside the eps-ball, as it will be saved
            (see :func:`quantise_in_ball`); the predictions are then the saved
            PNG's. ``step_size`` defaults from that budget too.
        clean_probs: ``(classes,)`` the clean prediction if already known (a
            cache), to skip one forward pass (ignored for an image rounded first).
        on_step: progress callback, see :func:`iterative_fgsm`.

    Raises:
        UmaskError: bad eps, steps, step size, target class or image.
    """
    eps = check_eps(eps)
    budget = attack_budget(eps, quantise=quantise)
    steps, size = check_steps(steps, step_size, budget)
    clean = _check_image(model, image)
    goal = _check_target(model, target)
    if quantise and float((clean * 255.0 - eight_bit_levels(clean)).abs().max()) > 1e-3:
        # The ball is measured from the photo as an 8-bit file holds it (a
        # loaded photo is already, up to float rounding: CUDA's k / 255 can be
        # an ulp off): from the float one, rounding could take a pixel past
        # eps, and eps = 0 would change the image.
        clean, clean_probs = quantise_image(clean), None
    if clean_probs is None:
        clean_probs = predict(model, clean)
    source = int(clean_probs.argmax())
    log.info("attack on %s: eps %.4g (budget %.4g), %d step(s), %s", model.name, eps, budget, steps,
             "untargeted" if goal is None else f"target {goal}")
    adversarial = iterative_fgsm(model, clean, eps=budget, steps=steps, step_size=size or None, target=goal, label=source, on_step=on_step)
    if quantise:
        adversarial = quantise_in_ball(adversarial, clean, eps=eps)
    return AttackResult(
        clean=clean.cpu(),
        adversarial=adversarial.cpu(),
        clean_probs=clean_probs.cpu(),
        adversarial_probs=predict(model, adversarial),
        categories=tuple(model.categories),
        eps=eps,
        steps=steps,
        step_size=size,
        target=goal,
        source=source,
        quantised=quantise,
    )


def visible_perturbation(perturbation: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Make a tiny perturbation visible: ``(3, H, W)`` -> (``(3, H, W)`` in [0, 1], the factor).

    Grey (0.5) is no change; the factor stretches the largest change to
    black or white: ``0.5 + factor * perturbation`` with ``factor = 0.5 / max|perturbation|``
    (1 when nothing changed).
    """
    largest = float(perturbation.abs().max()) if perturbation.numel() else 0.0
    factor = 0.5 / largest if largest > 0.0 else 1.0
    return (0.5 + factor * perturbation).clamp(0.0, 1.0), factor
