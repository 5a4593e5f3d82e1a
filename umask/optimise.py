"""The optimisation: one image, K masked copies, K target classes.

:class:`UniversalSearch` is a streaming optimiser. Iterate over it and it yields
one :class:`StepReport` per step; break out whenever you like (Stop in the
dashboard, Ctrl-C in the CLI) and :meth:`UniversalSearch.result` still returns
the best image found so far, measured on its 8-bit form. It never prints,
renders or saves: the CLI, the dashboard, the sweeps and the tests consume the
same stream.

    search = UniversalSearch(load_model("efficientnet_lite0"), Config(model="efficientnet_lite0", k=10))
    for report in search:
        ...                      # report.loss, report.success_rate, report.image
    result = search.result()     # a Result, ready for umask.results.save_result
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from .config import Config
from .devices import free_memory
from .errors import UmaskError
from .evaluate import classify_masked
from .images import quantise
from .masks import apply_masks, layout, load_layout, make_masks, num_parts
from .models import Classifier
from .results import Result
from .targets import choose_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepReport:
    """What one step measured (on the image *before* that step's update).

    Attributes:
        step: 1-based number of this step.
        loss: the batch loss.
        target_probs: K probabilities of each mask's target class.
        predictions: K predicted classes.
        success_rate: fraction of masks whose prediction is their target
            and, with a ``stop_margin``, leads the runner-up by that margin
            (the rate the run stops on; the saved result's ``success_rate``
            counts plain hits). With ``quantised_forward`` this is measured
            on the 8-bit image.
        best_success_rate: the best success rate so far.
        seconds: optimisation time so far (time spent by the consumer excluded).
        image: ``(3, H, W)`` CPU snapshot in [0, 1] every ``snapshot_every``
            steps and at the last step, else None.
        done: every mask hit its target on the 8-bit image (with the stop
            margin), confirmed on the evaluation path; with ``stop_at_success``
            this report is the last.
        last: no step follows this one (success with ``stop_at_success``, or
            the step budget spent): a consumer need not wait for another.
    """

    step: int
    loss: float
    target_probs: tuple[float, ...]
    predictions: tuple[int, ...]
    success_rate: float
    best_success_rate: float
    seconds: float
    image: torch.Tensor | None = None
    done: bool = False
    last: bool = False


def _quantise_ste(x: torch.Tensor) -> torch.Tensor:
    """8-bit rounding in the forward pass, identity in the backward pass."""
    return x + (quantise(x) - x).detach()


def _mask_terms(logits: torch.Tensor, targets: torch.Tensor, loss: str, kappa: float, k: int) -> torch.Tensor:
    """``(B,)`` loss term of each of B masked copies (out of ``k``), before the losing-mask selection.

    * ``"ce"``: cross-entropy / K (the study's mean cross-entropy).
    * ``"focused"``: cross-entropy; only the masks still losing are summed, so
      masks already won drop out and each step works on the others. Unlike a
      hinge, a losing mask keeps cross-entropy's smooth pull on every class.
    * ``"margin"``: hinge max(best other logit - target logit + kappa, 0) / K
      (the CW loss).
    """
    if loss == "ce":
        return F.cross_entropy(logits, targets, reduction="none") / k
    if loss == "margin":
        return F.relu(_gap(logits, targets) + kappa) / k
    return F.cross_entropy(logits, targets, reduction="none")


def _gap(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(K,)`` best other logit minus the target's logit (< 0: target wins)."""
    target_logit = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    return others.max(dim=1).values - target_logit


def _balance_gradients(
    batch: torch.Tensor, masks: torch.Tensor, weights: Callable[[], torch.Tensor] | None = None
) -> torch.Tensor:
    """Rescale the gradient of each masked copy on its way back to the image.

    Summed as they come, the copies' gradients are dominated by the masks
    farthest from their targets, and the masks nearly won barely move. Here
    each copy's gradient is scaled to unit length, then times its weight, so
    every mask still losing pulls as hard as the others (or as hard as its
    weight says). Masks that give no gradient (won, under the focused loss)
    stay at zero.

    Args:
        batch: ``(B, 3, H, W)`` masked copies, part of the autograd graph.
        masks: ``(B, 1, H, W)`` their keep-multipliers: the length is measured
            on the pixels that reach the image (with fill "mean", the little
            that hidden pixels pass back through the mean is left out).
        weights: returns the ``(B,)`` pull of each copy; None: all 1. Called
            in the backward pass, so it can use what the forward measured.

    Returns:
        ``batch`` itself, with the rescaling hooked into its backward pass.
    """

    def rescale(grad: torch.Tensor) -> torch.Tensor:
        # The gradient comes back channels_last (the model's layout), where
        # multiplying by the (B, 1, H, W) masks is several times slower than
        # in the plain layout; one copy makes this and the masking after it cheap.
        grad = grad.contiguous()
        lengths = torch.linalg.vector_norm(grad * masks, dim=(1, 2, 3)).clamp_min(1e-12)
        scale = 1.0 / lengths if weights is None else weights() / lengths
        return grad * scale.view(-1, 1, 1, 1)

    batch.register_hook(rescale)
    return batch


# Masks still losing, as a fraction of K, below which a step first classifies
# all K copies without autograd and then differentiates only the losing ones.
# Measured on EfficientNet-Lite0 (K = 26, CPU): a no-grad forward costs 0.34 of
# a forward+backward, and forward+backward scales with the batch, so the two
# passes cost about 0.34 + fraction; below 0.6 they are cheaper.
# CPU only: on a GPU a batch of K small images costs about what a batch of a few
# does (kernel launches dominate), and every new batch size makes cuDNN build
# new kernels. Measured on an H100 (Lite0, K = 62 grid): 296 ms a step with two
# passes against 16 ms with one.
TWO_PASS_BELOW = 0.6

# A step's memory over K x Classifier.activation_bytes: autograd's own buffers,
# the masked copies and the allocator's slack. Measured peak over estimate on
# the CPU: 1.2 (ResNet-50) to 3.8 (AlexNet, whose activations are small beside
# its fixed costs); 1.3 on EfficientNet-Lite0. The lowest, so a run is refused
# only when it cannot fit; one that passes can still run out part-way, which
# the CLI and the dashboard report in one sentence (errors.out_of_memory).
STEP_MEMORY_FACTOR = 1.2

# Decimals of a result's optimisation seconds (result.json's "seconds"); a live
# progress line rounds alike, so it never shows a figure the verdict does not.
SECONDS_DECIMALS = 3


def _meets_margin(probs: torch.Tensor, targets: torch.Tensor, margin: float,
                  predictions: torch.Tensor | None = None) -> torch.Tensor:
    """``(K,)`` bool: target is the argmax and leads the runner-up by ``margin``.

    ``predictions`` is ``probs.argmax(dim=1)`` when the caller has it already.
    """
    if predictions is None:
        predictions = probs.argmax(dim=1)
    hits = predictions == targets
    if margin <= 0:  # the argmax leads every other class by >= 0 already
        return hits
    target_p = probs.gather(1, targets[:, None]).squeeze(1)
    others = probs.scatter(1, targets[:, None], -1.0).max(dim=1).values
    return hits & (target_p - others >= margin)


def _amount(size: float) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB"


def _check_memory(model: Classifier, config: Config) -> None:
    """Refuse, in one sentence, a search whose steps cannot fit in the device's
    free memory: the alternative is the system killing the process mid-run.

    Raises:
        UmaskError: it would need more than is free.
    """
    free = free_memory(model.device)
    if free is None:
        return
    try:
        per_image = model.activation_bytes(config.size)
    except RuntimeError as err:  # the model fails on this input: the run's first step reports it where runs report
        log.info("memory check skipped: %s", err)
        return
    need = STEP_MEMORY_FACTOR * config.k * per_image
    log.info("a step needs about %s; %s free on %s", _amount(need), _amount(free), model.device)
    if need > free:
        where = "in this machine's memory" if model.device.type == "cpu" else f"on {model.device}"
        fed = model.resize_to  # what the memory goes on: the copies as the model takes them
        raise UmaskError(
            f"One step with K = {config.k} masked copies of a {config.size} x {config.size} image"
            + (f" fed at {fed} x {fed}" if fed else "") + f" needs about {_amount(need)} on {model.name}, more than "
            f"the {_amount(free)} free {where}; use " + ("a smaller resize (or none)" if fed else "a smaller image")
            + " or fewer masks."
        )


def import_optimisers() -> None:
    """Make one throwaway optimiser, as a search does first.

    The first optimiser a process makes imports torch's compiler
    (``torch._dynamo``: 1-2 s on a laptop CPU). Called where that second
    should not fall on a click: a worker process before it says ready, the
    dashboard's server as its first page loads.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


class UniversalSearch:
    """Streams the optimisation of one universal image.

    Args:
        model: a frozen :class:`Classifier` (pixels in [0, 1]); shared models
            are safe, the search only ever differentiates its own image.
        config: every knob; ``config.model`` is recorded, not loaded here,
            and ``model`` decides the device and the resize (the result
            records those of ``model``, whatever ``config`` says).
        labels: an explicit ``(H, W)`` part label map; by default it is made
            from ``config`` (family, K, size, layout seed or layout path).

    Raises:
        UmaskError: ``model`` is not the one ``config.model`` names, the
            layout cannot make K parts (or ``labels`` is not size x size),
            the image is smaller than the model accepts, or the targets are invalid.
    """

    # Its tensors take part in autograd even when made inside a caller's
    # inference_mode (which would make them unusable for backward).
    @torch.inference_mode(False)
    def __init__(self, model: Classifier, config: Config, *, labels: torch.Tensor | None = None) -> None:
        if model.name != config.model:
            # The result is saved under config.model and re-read with it:
            # a different model would make every later check disagree.
            raise UmaskError(f"The config names the model '{config.model}' but the search was given "
                             f"'{model.name}'; load the model the config names (load_model(config.model)).")
        self.model = model
        self.config = config
        if labels is None:
            if config.mask_family == "custom":
                labels = load_layout(config.layout_path, config.size)
            else:
                labels = layout(config.mask_family, config.k, config.size, seed=config.layout_seed)
        if tuple(labels.shape) != (config.size, config.size):
            raise UmaskError(f"The part map is {labels.shape[-1]} x {labels.shape[0]} pixels but the image is "
                             f"{config.size} x {config.size}; they must agree.")
        if num_parts(labels) != config.k:
            # A part map file numbers its parts from 1 (0: no part); a labels tensor from 0 (-1: none).
            hint = " (value 0 marks no part, so K parts are the values 1..K)" if config.mask_family == "custom" else ""
            raise UmaskError(f"The part map has {num_parts(labels)} parts but K = {config.k}; they must agree{hint}.")
        model.check_side(config.size)
        self.labels = labels
        self.targets = choose_targets(config.k, seed=config.seed, given=config.targets)
        _check_memory(model, config)  # last: it costs a forward pass
        log.info("search: %s K=%d %s/%s on %dx%d, %s lr %g, up to %d steps, targets %s", config.model, config.k,
                 config.mask_family, config.mask_mode, config.size, config.size, config.optimizer, config.lr,
                 config.steps, list(self.targets))
        device = model.device
        self._masks = make_masks(labels, config.mask_mode).to(device)
        self._targets = torch.tensor(self.targets, device=device)
        self._fill = config.fill

        gen = torch.Generator().manual_seed(config.seed)
        shape = (3, config.size, config.size)
        x0 = torch.rand(shape, generator=gen) if config.init == "noise" else torch.full(shape, 0.5)
        if config.parametrisation == "sigmoid":
            x0 = torch.logit(x0.clamp(1e-3, 1 - 1e-3))
        self._param = x0.to(device).requires_grad_(True)
        if config.optimizer == "adam":
            self._opt = torch.optim.Adam([self._param], lr=config.lr, betas=(0.9, config.adam_beta2))
        else:  # "sgd", and "sign" = SGD on the sign of the gradient
            self._opt = torch.optim.SGD([self._param], lr=config.lr)
        total = config.steps

        def lr_factor(t: int) -> float:
            if config.schedule == "plateau":
                return self._plateau_factor
            if config.schedule == "constant":
                return 1.0
            return config.lr_floor + (1 - config.lr_floor) * 0.5 * (1 + math.cos(math.pi * min(t, total) / total))

        self._plateau_factor = 1.0
        self._losing_streak = torch.zeros(config.k, device=device)  # steps in a row each mask has missed, this one included
        self._active_fraction = 1.0
        self._two_pass_pays = device.type == "cpu"  # see TWO_PASS_BELOW
        self._last_progress = 0
        self._sched = torch.optim.lr_scheduler.LambdaLR(self._opt, lr_factor)
        self._best_key: tuple[float, float, float] = (-1.0, 0.0, -math.inf)
        self._best = self.pixels().detach().clone()
        self.steps_done = 0
        self.seconds = 0.0
        self.succeeded = False
        self.last_loss = math.nan

    def pixels(self) -> torch.Tensor:
        """The current image ``(3, H, W)`` in [0, 1] (float, not yet rounded)."""
        if self.config.parametrisation == "sigmoid":
            return torch.sigmoid(self._param)
        return self._param

    @property
    def masks(self) -> torch.Tensor:
        """``(K, 1, H, W)`` keep-multipliers on the model's device."""
        return self._masks

    def best_image(self) -> torch.Tensor:
        """The best image so far, 8-bit rounded, ``(3, H, W)`` on the CPU."""
        return quantise(self._best).cpu()

    def _masked(self, image: torch.Tensor, which: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3, H, W)`` copies of ``image`` under the masks ``which`` (default all K), gradients balanced if configured."""
        masks = self._masks if which is None else self._masks[which]
        batch = apply_masks(image, masks, self._fill)
        if self.config.balance_masks and batch.requires_grad:
            weights = None
            if self.config.streak_scale > 0:
                # A mask that keeps missing pulls harder and harder, until it
                # outweighs the masks it conflicts with (the last few masks of
                # a run are the slow ones otherwise). Read at backward time:
                # the streaks then include this step's success check.
                def weights() -> torch.Tensor:
                    streak = self._losing_streak if which is None else self._losing_streak[which]
                    return 1.0 + streak / self.config.streak_scale

            _balance_gradients(batch, masks, weights)
        return batch

    def __iter__(self) -> Iterator[StepReport]:
        while self.steps_done < self.config.steps:
            # Gradients on for the step itself, whatever the caller's mode
            # (a consumer under no_grad or inference_mode would break
            # backward), but not across the yield, where the caller's code runs.
            with torch.inference_mode(False), torch.enable_grad():
                report = self._step()
            yield report
            if report.last:
                return

    def _step(self) -> StepReport:
        """One step: measure x, keep it if best, update it unless finished."""
        cfg = self.config
        started = time.perf_counter()
        x = self.pixels()
        seen = _quantise_ste(x) if cfg.quantised_forward else x
        # With a selective loss and few masks left, classify all K copies
        # without autograd and differentiate only the losing ones below:
        # the same gradient (won masks contribute none) for less work.
        two_pass = self._two_pass_pays and cfg.loss != "ce" and self._active_fraction < TWO_PASS_BELOW
        with torch.set_grad_enabled(not two_pass):
            logits = self.model(self._masked(seen))
            terms = _mask_terms(logits, self._targets, cfg.loss, cfg.kappa, cfg.k)
        with torch.no_grad():
            # Each tensor below is made once and read again by the report:
            # at ~20 µs an op, this bookkeeping is a step's fixed cost, which
            # shows on small models (BENCHMARKS.md, table 2).
            probs = self.model.check_outputs(logits.detach().float().softmax(dim=1))
            predictions = probs.argmax(dim=1)
            hits = _meets_margin(probs, self._targets, cfg.stop_margin, predictions)
            won = int(hits.sum())
            rate = won / cfg.k  # as the saved result counts it, not in float32
            done = won == cfg.k
            self._losing_streak = self._losing_streak.add(1).masked_fill_(hits, 0)
            confirmed = hits
            if done:
                # Confirm on the exact path that measures the saved PNG
                # (the float image, or a different batch, may differ in
                # the last bit from the forward above).
                check = classify_masked(self.model, quantise(x.detach()), self._masks, fill=self._fill)
                confirmed = _meets_margin(check.probs.to(probs.device), self._targets, cfg.stop_margin)
                done = bool(confirmed.all())
            if cfg.loss == "ce":
                active = None  # every mask
                self._active_fraction = 1.0
            else:
                # Losing: not ahead by kappa logits, or short of the stop margin (in
                # this batch, or on the 8-bit image: else no mask would move it on).
                active = (_gap(logits.detach(), self._targets) + cfg.kappa > 0) | ~hits | ~confirmed
                self._active_fraction = int(active.sum()) / cfg.k
        loss = terms.sum() if active is None else torch.where(active, terms, 0.0).sum()
        with torch.no_grad():
            self.last_loss = float(loss.detach())
            # A confirmed win outranks any unconfirmed 100 % batch.
            key = (rate, float(done), -self.last_loss)
            if key[0] > self._best_key[0]:
                self._last_progress = self.steps_done
            elif self.steps_done - self._last_progress >= cfg.patience:
                # Stuck: the last few masks need finer steps, not bigger ones.
                self._plateau_factor = max(self._plateau_factor / 2, cfg.lr_floor)
                self._last_progress = self.steps_done
            if key > self._best_key:
                self._best_key = key
                self._best = x.detach().clone()
            self.steps_done += 1
            finished = (done and cfg.stop_at_success) or self.steps_done >= cfg.steps
            snapshot = finished or (cfg.snapshot_every and self.steps_done % cfg.snapshot_every == 0)
            # Everything the report needs is read before the update
            # changes x in place: the report describes the image measured.
            report = StepReport(
                step=self.steps_done,
                loss=self.last_loss,
                target_probs=tuple(probs.gather(1, self._targets[:, None]).squeeze(1).tolist()),
                predictions=tuple(predictions.tolist()),
                success_rate=rate,
                best_success_rate=self._best_key[0],
                seconds=0.0,
                image=quantise(x.detach()).cpu() if snapshot else None,
                done=done,
                last=finished,
            )
        # Nothing losing (possible when not stopping at success): no update,
        # so the one-pass path (always on CUDA) moves x exactly as the
        # two-pass path does (Adam's momentum would move it on a zero gradient).
        if not finished and self._active_fraction > 0:
            self._opt.zero_grad(set_to_none=True)
            if two_pass:
                chosen = active.nonzero().squeeze(1)
                sub = self.model(self._masked(seen, chosen))
                loss = _mask_terms(sub, self._targets[chosen], cfg.loss, cfg.kappa, cfg.k).sum()
            loss.backward()
            if cfg.optimizer == "sign":
                self._param.grad.sign_()
            self._opt.step()
            self._sched.step()
            if cfg.parametrisation == "clamp":
                with torch.no_grad():
                    self._param.clamp_(0.0, 1.0)
        self.seconds += time.perf_counter() - started
        if done:
            self.succeeded = True
        return dataclasses.replace(report, seconds=self.seconds)

    def run(self) -> Result:
        """Run to the end (success or the step budget) and return the result."""
        for _ in self:
            pass
        return self.result()

    def result(self) -> Result:
        """The best image so far as a :class:`Result`, measured on its 8-bit form."""
        final_loss = -self._best_key[2] if self.steps_done else math.nan  # the kept image's, not the last step's
        return self.result_of(self.best_image(), steps=self.steps_done, seconds=self.seconds, final_loss=final_loss)

    def result_of(self, image: torch.Tensor, *, steps: int, seconds: float, final_loss: float = math.nan) -> Result:
        """``image`` as a :class:`Result` of this search, measured on its 8-bit form.

        For an image this object did not keep itself: a worker process ran
        the steps and is gone, and its last snapshot is what is left.

        Args:
            image: ``(3, H, W)`` in [0, 1]; rounded to 8 bits here.
            steps, seconds: the steps and seconds that made it.
            final_loss: its loss when known.
        """
        image = quantise(image).cpu()
        outcome = classify_masked(self.model, image, self._masks, fill=self._fill, targets=self.targets)
        cfg = self.config
        names = self.model.categories
        return Result(
            image=image,
            labels=self.labels.cpu(),
            model=cfg.model,
            mask_family=cfg.mask_family,
            mask_mode=cfg.mask_mode,
            fill=cfg.fill,
            targets=self.targets,
            target_names=tuple(names[t] for t in self.targets),
            predictions=outcome.predictions,
            target_probs=outcome.target_probs,
            success_rate=outcome.success_rate,
            steps=steps,
            seconds=round(seconds, SECONDS_DECIMALS),
            final_loss=final_loss,
            # What ran: the model's device and resize ("auto" and "native" resolved).
            config=cfg.to_dict() | {"targets": list(self.targets), "device": str(self.model.device), "resize_to": self.model.resize_to},
            preprocessing=self.model.preprocessing,
            weights_sha256=self.model.weights_sha256,
        )
