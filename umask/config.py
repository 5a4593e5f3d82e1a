"""Every knob of one optimisation, in one frozen dataclass.

``Config()`` is umask's fast default; ``Config.preset("seed")`` is exactly the
study's recipe (SGD, lr 0.1, up to 5000 steps, 64 x 64, cross-entropy, float
forward, clamp to the box). The CLI builds a Config from its flags and the
dashboard from its widgets; ``result.json`` stores it beside every result.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UmaskError
from .masks import FAMILIES, check_enough_parts, check_mode, parse_fill
from .models.registry import DEFAULT_MODEL, canonical_spec
from .models.wrapper import MAX_SIDE, MIN_SIDE, parse_resize
from .targets import NUM_CLASSES, choose_targets, resolve_class

OPTIMIZERS = ("sgd", "adam", "sign")
SCHEDULES = ("constant", "cosine", "plateau")
LOSSES = ("ce", "focused", "margin")
PARAMETRISATIONS = ("clamp", "sigmoid")
INITS = ("noise", "grey")


#: The largest learning rate a Config takes: far above any useful one.
MAX_LR = 1e4


@dataclass(frozen=True)
class Config:
    """One universal-image optimisation.

    Attributes:
        model: model spec (registry name, torchvision name or ARCH=PATH).
        mask_family: grid | hstripes | vstripes | random | custom.
        k: number of masks (= parts = target classes), >= 2.
        mask_mode: "hide" (mask k hides part k, the study) or "keep".
        fill: value of hidden pixels, in [0, 1], or "mean" (the image's mean).
        size: side of the square image in pixels (64 in the study).
        layout_path: label-map PNG for the custom family (value k+1 = part k).
        layout_seed: seed of the random family's partition.
        targets: K distinct classes, by index or by name (stored as
            indices); None (or empty) draws them at random with ``seed``.
        optimizer: sgd | adam | sign (signed-gradient steps of size lr).
        lr: learning rate (step size for "sign").
        adam_beta2: Adam's second-moment decay. 0.9 (not PyTorch's 0.999):
            the focused loss drops won masks, so the gradient's scale changes
            as the run goes, and a short memory follows it (README, "Choosing
            the default recipe").
        balance_masks: scale each masked copy's gradient to unit length
            before the copies' gradients are summed, so every mask still
            losing pulls the image as hard as the others, however far it is
            from its target (README, "Choosing the default recipe").
        streak_scale: with ``balance_masks``, a mask that has missed its
            target for n steps in a row pulls (1 + n / streak_scale) times as
            hard as the others; 0 = all pull alike. It acts through the
            balancing, so without it the config holds 0 (what runs).
        schedule: constant | cosine (lr decays to lr * lr_floor over ``steps``)
            | plateau (lr halves whenever the best success rate has not risen
            for ``patience`` steps, down to lr * lr_floor).
        lr_floor: the smallest fraction of lr a schedule reaches.
        patience: steps without progress before the plateau schedule halves lr.
        loss: "ce" (mean cross-entropy, the study), "focused" (cross-entropy
            summed over the masks not yet winning by ``kappa`` logits) or
            "margin" (per-mask hinge on the logit gap).
        kappa: logit margin of the "focused" and "margin" losses.
        parametrisation: "clamp" (optimise pixels, clamp to [0,1] after each
            step) or "sigmoid" (pixels = sigmoid(w), always inside the box).
        quantised_forward: forward the 8-bit rounded image (straight-through
            gradient), so every forward measures the image that gets saved.
        init: "grey" (0.5 everywhere) or "noise" (uniform in [0,1] with ``seed``).
        steps: step budget.
        stop_at_success: stop once every mask hits its target on the 8-bit image.
        stop_margin: extra probability the target must lead the runner-up by.
        snapshot_every: yield an image snapshot every N steps (0 = never).
        seed: seeds the random targets (and the initial image with init="noise").
        device: cpu | cuda | auto.
        resize_to: None feeds the image at ``size``; an int or "native"
            resizes inside the model wrapper.
    """

    model: str = DEFAULT_MODEL
    mask_family: str = "grid"
    k: int = 10
    mask_mode: str = "hide"
    fill: float | str = 0.0
    size: int = 64
    layout_path: str | None = None
    layout_seed: int = 0
    targets: tuple[int | str, ...] | None = None
    optimizer: str = "adam"
    lr: float = 0.04
    adam_beta2: float = 0.9
    balance_masks: bool = True
    streak_scale: float = 10.0
    schedule: str = "constant"
    lr_floor: float = 0.05
    patience: int = 50
    loss: str = "focused"
    kappa: float = 2.0
    parametrisation: str = "clamp"
    quantised_forward: bool = True
    init: str = "grey"
    steps: int = 5000  # the study's budget: runs stop at 100 %, so only a struggling run uses it (README)
    stop_at_success: bool = True
    stop_margin: float = 0.0
    snapshot_every: int = 10
    seed: int = 0
    device: str = "cpu"
    resize_to: int | str | None = None

    def __post_init__(self) -> None:
        self._check_number_types()
        object.__setattr__(self, "model", canonical_spec(self.model))  # a relative checkpoint path, made absolute
        _check_choice("mask family", self.mask_family, FAMILIES)
        check_mode(self.mask_mode)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("parametrisation", self.parametrisation, PARAMETRISATIONS)
        _check_choice("init", self.init, INITS)
        object.__setattr__(self, "fill", parse_fill(self.fill))
        check_enough_parts(self.k)
        if self.k > NUM_CLASSES:  # before any layout: K = 5000 fails here, whatever the family could cut
            raise UmaskError(f"K = {self.k} is more masks than ImageNet has classes; each mask needs a target class "
                             f"of its own, so K may be at most {NUM_CLASSES}.")
        if self.size < MIN_SIDE:
            raise UmaskError(f"Image size {self.size} is too small; use at least {MIN_SIDE} pixels (the study used 64).")
        if self.size > MAX_SIDE:
            raise UmaskError(f"Image size {self.size} is too large; use at most {MAX_SIDE} pixels (the study used 64).")
        for name in ("seed", "layout_seed"):
            if not 0 <= getattr(self, name) < 2**63:  # what torch's generators take
                raise UmaskError(f"{name.replace('_', ' ').capitalize()} {getattr(self, name)} is not allowed; give a whole number from 0 to 2^63 - 1.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UmaskError(f"Learning rate {self.lr} must be a positive, finite number.")
        if self.lr > MAX_LR:  # pixels live in [0, 1]; near 3.4e38 the update itself overflows float32
            raise UmaskError(f"Learning rate {self.lr:g} is more than {MAX_LR:g}; give one up to that (the study's is 0.1).")
        if not 0.0 <= self.adam_beta2 < 1.0:
            raise UmaskError(f"Adam's beta2 = {self.adam_beta2} must lie in [0, 1).")
        if not 0.0 <= self.lr_floor <= 1.0:  # above 1 a schedule would raise lr; below 0 it would climb the loss
            raise UmaskError(f"lr_floor = {self.lr_floor} must lie in [0, 1] (a fraction of lr).")
        if self.patience < 1:
            raise UmaskError(f"patience = {self.patience} must be at least 1 step.")
        if not (self.kappa >= 0 and math.isfinite(self.kappa)):
            raise UmaskError(f"kappa = {self.kappa} must be a finite logit margin of 0 or more.")
        if not (self.streak_scale == 0 or (self.streak_scale >= 1 and math.isfinite(self.streak_scale))):
            # Below one step the weight 1 + n / scale grows past float32's range (1e-38: "outputs that are not numbers").
            raise UmaskError(f"Streak scale {self.streak_scale} must be 0 (off) or a number of steps, 1 or more.")
        if not self.balance_masks:
            object.__setattr__(self, "streak_scale", 0.0)
        if self.steps < 1:
            raise UmaskError(f"Steps = {self.steps} must be at least 1.")
        if not 0.0 <= self.stop_margin < 1.0:
            raise UmaskError(f"Stop margin {self.stop_margin} must lie in [0, 1).")
        if self.snapshot_every < 0:
            raise UmaskError("snapshot_every must be 0 (never) or a positive number of steps.")
        if self.mask_family == "custom" and not self.layout_path:
            raise UmaskError("The 'custom' mask family needs a part-map image (on the command line: --layout PARTS.png).")
        if self.layout_path and self.mask_family != "custom":
            raise UmaskError(f"A part-map image goes with the 'custom' mask family, not '{self.mask_family}'.")
        if self.layout_path:  # as a checkpoint's: result.json's config stays usable from another folder
            object.__setattr__(self, "layout_path", str(Path(self.layout_path).expanduser().absolute()))
        object.__setattr__(self, "resize_to", parse_resize(self.resize_to))
        if self.targets is not None:
            if isinstance(self.targets, (str, bytes)):  # one name is not K targets: "tabby" must not become 5 letters
                raise UmaskError(f"Targets must be a list of K classes, not the single value '{self.targets}'.")
            given = tuple(_class_index(t) for t in self.targets)
            # Here, not at the first step: K distinct classes or a clear sentence (an empty list = random).
            object.__setattr__(self, "targets", choose_targets(self.k, given=given) if given else None)

    def _check_number_types(self) -> None:
        """Each number field holds its kind, as the default's type says: a
        whole number for steps (2.5 would silently run 3), a real number for
        lr, a bool for switches. A string or a float where a whole number
        belongs is refused here, not met later as a TypeError."""
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), type(f.default)
            if f.name == "fill" or kind not in (bool, int, float):  # fill may be "mean": parse_fill's
                continue
            label = {"k": "K", "lr": "Learning rate"}.get(f.name, f.name.replace("_", " ").capitalize())
            if kind is bool:
                if type(value).__name__ not in ("bool", "bool_"):  # numpy's bool_ too
                    raise UmaskError(f"{label} must be true or false, not {value!r}.")
                value = bool(value)
            elif kind is int:
                try:
                    if isinstance(value, bool):
                        raise TypeError
                    value = operator.index(value)  # numpy's and torch's integers too, not 2.5
                except TypeError:
                    raise UmaskError(f"{label} must be a whole number, not {value!r}.") from None
            elif isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise UmaskError(f"{label} must be a number, not {value!r}.")
            else:
                value = float(value)
            object.__setattr__(self, f.name, value)

    @staticmethod
    def preset(name: str, **overrides: Any) -> "Config":
        """A named preset with overrides: ``"fast"`` (umask's default) or ``"seed"`` (the study's)."""
        check_preset(name)
        return Config(**{**PRESETS[name], **overrides})

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if data["targets"] is not None:
            data["targets"] = list(data["targets"])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "optimizer" in values:
            # Saved before adam_beta2 existed: those runs used PyTorch's 0.999.
            values.setdefault("adam_beta2", 0.999)
            # ... and summed the copies' gradients as they came.
            values.setdefault("balance_masks", False)
            values.setdefault("streak_scale", 0.0)
        if values.get("targets") is not None:
            values["targets"] = tuple(values["targets"])
        return cls(**values)


def _class_index(target: Any) -> int:
    """A target as a class index: a name (resolved), or any integer (numpy's, torch's too)."""
    if isinstance(target, str):
        return resolve_class(target)
    try:
        return resolve_class(operator.index(target))
    except TypeError:
        raise UmaskError(f"Target {target!r} is not a class; give an ImageNet class name or an index 0-999.") from None


def check_preset(name: str) -> None:
    """Raise unless ``name`` is a preset: "fast" (umask's default) or "seed" (the study's)."""
    _check_choice("preset", name, tuple(PRESETS))


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UmaskError(f"Unknown {what} '{value}'; choose one of {', '.join(allowed)}.")


PRESETS: dict[str, dict[str, Any]] = {
    # umask's default: see README "Choosing the default recipe" for the measurements.
    "fast": {},
    # The study, exactly: SGD lr 0.1, cross-entropy on the float image, up to
    # 5000 steps, 64 x 64, pixels clamped to the unit cube.
    "seed": dict(
        optimizer="sgd",
        lr=0.1,
        balance_masks=False,
        streak_scale=0.0,
        schedule="constant",
        loss="ce",
        parametrisation="clamp",
        quantised_forward=False,
        init="noise",
        steps=5000,
        size=64,
    ),
}
