"""What a model says about the masked copies of an image.

One function, :func:`classify_masked`, is the single place where masked copies
are classified; the optimiser's final check, ``umask evaluate``, the dashboard
and the sweeps all call it. Those that classify a result's K copies together
(all but the dashboard's one-selection view) agree to the last bit; a copy
classified in a batch of another size can differ in the last bits of float32
(the convolution kernels change with the batch), which shows only where two
classes tie to about 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import UmaskError
from .masks import apply_masks, make_masks
from .models import Classifier, canonical_spec, load_model, parse_resize
from .results import Result, load_result


@dataclass(frozen=True)
class MaskedPredictions:
    """Per-mask outcome on one model.

    Attributes:
        probs: ``(K, classes)`` softmax probabilities, on the CPU.
        targets: the K target classes, or None when there are none.
    """

    probs: torch.Tensor
    targets: tuple[int, ...] | None = None

    @property
    def predictions(self) -> tuple[int, ...]:
        return tuple(int(i) for i in self.probs.argmax(dim=1))

    @property
    def target_probs(self) -> tuple[float, ...]:
        if self.targets is None:
            return ()
        return tuple(float(self.probs[k, t]) for k, t in enumerate(self.targets))

    @property
    def hits(self) -> tuple[bool, ...]:
        if self.targets is None:
            return ()
        return tuple(p == t for p, t in zip(self.predictions, self.targets))

    @property
    def success_rate(self) -> float:
        hits = self.hits
        return sum(hits) / len(hits) if hits else 0.0

    def top(self, k: int, n: int = 5) -> list[tuple[int, float]]:
        """The ``n`` most probable classes of mask ``k`` as (class, probability)."""
        values, indices = self.probs[k].topk(n)
        return [(int(i), float(v)) for v, i in zip(values, indices)]


@torch.no_grad()
def classify_masked(
    model: Classifier,
    image: torch.Tensor,
    masks: torch.Tensor,
    *,
    fill: float | str = 0.0,
    targets: tuple[int, ...] | None = None,
    batch_size: int = 64,
) -> MaskedPredictions:
    """Classify the masked copies of ``image``.

    Args:
        model: a frozen classifier (pixels in [0, 1]).
        image: ``(3, H, W)`` in [0, 1]; pass it as saved (8-bit) to measure the PNG.
        masks: ``(K, 1, H, W)`` keep-multipliers (see :func:`umask.masks.make_masks`).
        fill: hidden-pixel value or ``"mean"``.
        targets: optional K target classes, to report hits.

    Raises:
        UmaskError: the image's size does not suit the model (too small, or not
            the one size a fixed-size model takes).
    """
    model.check_side(image.shape[-1], classify_only=True)
    image = image.to(model.device)
    masks = masks.to(model.device)
    chunks = []
    for start in range(0, masks.shape[0], batch_size):
        batch = apply_masks(image, masks[start : start + batch_size], fill)
        chunks.append(model.check_outputs(model(batch).float().softmax(dim=1)).cpu())
    return MaskedPredictions(torch.cat(chunks), targets)


def classify_parts(
    model: Classifier,
    image: torch.Tensor,
    labels: torch.Tensor,
    *,
    mode: str = "hide",
    fill: float | str = 0.0,
    targets: tuple[int, ...] | None = None,
) -> MaskedPredictions:
    """:func:`classify_masked` for a part label map ``(H, W)`` and a mask mode."""
    return classify_masked(model, image, make_masks(labels, mode), fill=fill, targets=targets)


def weights_changed(model: Classifier, spec: str, result: Result) -> bool:
    """Whether ``model`` is the result's own checkpoint model (``ARCH=PATH``)
    but its file now holds other weights than when the result was made: its
    predictions need not repeat the saved ones."""
    if canonical_spec(spec) != canonical_spec(result.model):
        return False
    return bool(result.weights_sha256 and model.weights_sha256 and model.weights_sha256 != result.weights_sha256)


def as_fed_for(model: Classifier, spec: str, result: Result) -> Classifier:
    """``model`` (loaded under ``spec``, not resized) as it should see ``result``.

    The model the image was made for sees it as it did then (the result's
    ``resize_to``), so its predictions reproduce the saved ones. Any other
    model sees the image at its own size, as the study fed 64 x 64 to every
    model, unless the result was made resized (then each model gets its own
    native size) or the model cannot see at that size (a vision transformer,
    or an image below its ``min_size``, where it may run but is all but
    blind: native too). Returns a view
    that shares the network (:meth:`Classifier.with_resize`).
    """
    if canonical_spec(spec) == canonical_spec(result.model):  # "r18=net.pth" typed here is the result's absolute path
        return model.with_resize(result.resize_to)
    if result.resize_to is None:
        try:
            model.check_side(result.size)
            return model.with_resize(None)
        except UmaskError:
            pass
    return model.with_resize(model.native_size)


def transfer_report(folder: str | Path, models: list[str] | None = None, device: str = "cpu",
                    resize: int | str | None = None, *, skip_unavailable: bool = False) -> dict:
    """What each model predicts for every masked copy of a saved result (``umask evaluate``'s JSON report).

    Args:
        folder: a result folder.
        models: model specs (default: the result's own model).
        device: where the models run.
        resize: feed every model at one side (or "native"); None lets
            :func:`as_fed_for` choose per model. Each model's entry says
            the side it saw (``fed_at``).
        skip_unavailable: leave out a model that cannot load (weights not
            here offline, a package not installed); the report's
            ``unavailable`` maps it to why. At least one model must load.

    Raises:
        UmaskError: an unreadable result, a model that cannot load (unless
            skipped), no model that can, or a side a model cannot take.
    """
    resize = parse_resize(resize)
    result = load_result(folder)
    specs = [canonical_spec(m) for m in models] if models else [result.model]
    report = {"folder": str(folder), "k": result.k, "size": result.size, "targets": list(result.targets),
              "saved_predictions": list(result.predictions), "models": {}}
    unavailable: dict[str, str] = {}
    for spec in specs:
        try:
            model = load_model(spec, device=device)
        except UmaskError as err:
            if skip_unavailable:
                unavailable[spec] = str(err)
                continue
            if len(specs) > 1:
                raise UmaskError(f"{str(err).rstrip('.')}; to evaluate the other models without {spec}, "
                                 "add --skip-missing.") from None
            raise
        if resize is None:
            model = as_fed_for(model, spec, result)
        else:
            model = model.with_resize(model.native_size if resize == "native" else resize)
            model.check_side(result.size, resize_option="--resize native")  # a side chosen now: one it sees at
        outcome = classify_parts(model, result.image, result.labels, mode=result.mask_mode, fill=result.fill, targets=result.targets)
        report["models"][spec] = {
            "fed_at": model.resize_to or result.size,
            "predictions": list(outcome.predictions),
            "prediction_names": [model.categories[p] for p in outcome.predictions],
            "target_probs": [round(p, 6) for p in outcome.target_probs],
            "hits": list(outcome.hits),
            "success_rate": outcome.success_rate,
        } | ({"weights_changed": True} if weights_changed(model, spec, result) else {})
        if spec == canonical_spec(result.model):
            made_at = result.resize_to or result.size
            if (model.resize_to or result.size) == made_at:  # fed as it was made: it must repeat them
                report["models"][spec]["matches_saved"] = list(outcome.predictions) == list(result.predictions)
            else:  # said, not silently skipped: its misses are no sign of a broken result
                report["models"][spec]["made_at"] = made_at
    if not report["models"]:
        reasons = "; ".join(f"{spec}: {why.rstrip('.')}" for spec, why in unavailable.items())
        raise UmaskError(f"No model can load here ({reasons}), so nothing was evaluated.")
    if unavailable:
        report["unavailable"] = unavailable
    report["target_names"] = list(result.target_names)
    return report
