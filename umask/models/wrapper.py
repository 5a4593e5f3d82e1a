"""The one interface every classifier has inside umask."""

from __future__ import annotations

import copy
import math
import threading
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UmaskError


#: The smallest image side umask makes (a universal image), and the smallest
#: it resizes to inside the wrapper: 8 x 8 still has a part per stripe at K = 8.
MIN_SIDE = MIN_RESIZE = 8
# The largest image side umask takes anywhere (optimised, fed, or a photo):
# 16 times the study's 64 and above every model's native size (EfficientNet-B7:
# 600). Beyond it a mistyped number would exhaust memory instead of failing.
MAX_SIDE = 1024


def parse_resize(value: int | str | None) -> int | str | None:
    """A resize request as the wrapper takes it: None, ``"native"`` or a side in [MIN_RESIZE, MAX_SIDE].

    Accepts what people type (``"224"``, ``" native "``) as well as values.

    Raises:
        UmaskError: anything else, in one sentence.
    """
    if value is None or value == "native":
        return value
    text = str(value).strip().lower()
    if text == "native":
        return "native"
    if isinstance(value, bool) or not (isinstance(value, int) or text.isdigit()) or not MIN_RESIZE <= int(text) <= MAX_SIDE:
        raise UmaskError(
            f"Resize '{value}' is not allowed; give a side of {MIN_RESIZE} to {MAX_SIDE} pixels or 'native' (or leave it out)."
        )
    return int(text)


class Classifier(nn.Module):
    """A frozen ImageNet classifier that takes pixels in [0, 1].

    Callers never normalise: the wrapper subtracts the model's own ``mean`` and
    divides by its ``std``. It is ``eval()`` and every parameter has
    ``requires_grad=False``, so one instance can be shared between threads
    (gradients flow to the input only, never into shared state).

    Args:
        net: the underlying ``nn.Module`` mapping normalised images to logits.
        name: registry name (or spec) it was loaded under.
        categories: the class names, index i = class i (1000 for ImageNet-1K).
        mean, std: per-channel normalisation of the [0, 1] input.
        native_size: the resolution the model was trained at (e.g. 224).
        min_size: the smallest input side at which the network can learn an
            image: it sees there (for the Lite models, a side that runs but
            leaves a 1 x 1 last feature map is all but blind).
        min_run_size: the smallest side at which the forward runs at all
            (default ``min_size``): enough to classify an image that exists.
        fixed_size: the only side it accepts, for architectures that take one
            size alone (vision transformers); ``None`` for the others.
        resize_to: when set, inputs are resized (bilinear, antialiased) to this
            side before the network; ``None`` feeds the image as it is (the
            study fed 64 x 64 directly).

    Shape:
        input ``(B, 3, H, W)`` float in [0, 1]; output logits ``(B, classes)``.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        categories: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        native_size: int,
        min_size: int = 1,
        min_run_size: int | None = None,
        fixed_size: int | None = None,
        resize_to: int | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.categories = tuple(categories)
        self.native_size = int(native_size)
        self.min_size = int(min_size)
        self.min_run_size = int(min_size if min_run_size is None else min_run_size)
        self.fixed_size = fixed_size
        self.resize_to = resize_to
        # The SHA-256 of a local checkpoint's file (set by the loader; None for
        # named weights, whose files torchvision names by their hash): a result
        # records it, so re-evaluating after the file changed can say so.
        self.weights_sha256: str | None = None
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        # channels_last runs the convolutions of a K-image batch 20-40 % faster
        # on CPU (BENCHMARKS.md); the numbers are the same up to rounding.
        self.net.to(memory_format=torch.channels_last)
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "Classifier":
        # A frozen classifier stays in eval mode: batch norm and dropout must
        # never switch to training behaviour, even if a caller asks.
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def preprocessing(self) -> dict:
        """What the wrapper does to a [0, 1] image, as saved in ``result.json``."""
        return {
            "mean": [round(float(v), 6) for v in self.mean.flatten()],
            "std": [round(float(v), 6) for v in self.std.flatten()],
            "resize_to": self.resize_to,
        }

    def with_resize(self, resize_to: int | None) -> "Classifier":
        """This classifier fed at another side (None: as given): a view that
        shares the frozen network, so no second copy of the weights."""
        view = copy.copy(self)  # shallow: the modules and buffers are the same objects
        view.resize_to = resize_to
        return view

    def check_side(self, side: int, *, resize_option: str | None = None, size_option: str | None = None,
                   classify_only: bool = False) -> None:
        """Raise unless images ``side`` pixels a side can go through this model.

        The side the network sees is ``resize_to`` when set, else ``side``.
        An image to be made needs ``min_size``; ``classify_only`` asks only
        that the forward runs (``min_run_size``), so a saved image from a
        side the model barely sees at can still be measured.
        ``resize_option`` is how the caller's user asks for the native size
        (the CLI's "--resize native") and ``size_option`` how they set the
        side ("--size"); the message suggests those there are, else only a
        size that fits.

        Raises:
            UmaskError: too small for the architecture, or not the one size a
                fixed-size architecture takes.
        """
        fed = self.resize_to if self.resize_to is not None else side
        if self.fixed_size is not None and fed != self.fixed_size:
            fix = f"use {size_option} {self.fixed_size}" if size_option else f"make the image {self.fixed_size} pixels a side"
            raise UmaskError(
                f"{self.name} takes only {self.fixed_size} x {self.fixed_size} images, not {fed} x {fed}; "
                + (f"use {resize_option} (or {fix.removeprefix('use ')})." if resize_option else f"{fix}.")
            )
        least = self.min_run_size if classify_only else self.min_size
        if fed < least:
            if self.resize_to is not None:  # the side asked for is the resize, not the image's
                what, fix = f"A resize to {fed} pixels", f"a resize to {least} or more"
            else:
                what = f"Image size {fed}"
                fix = f"{size_option} {least} or more" if size_option else "a larger image"
            raise UmaskError(
                f"{what} is too small for {self.name}, which needs at least {least} pixels a side; "
                + (f"use {resize_option} (or {fix})." if resize_option else f"use {fix}.")
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.resize_to is not None and images.shape[-1] != self.resize_to:
            images = F.interpolate(
                images, size=(self.resize_to, self.resize_to), mode="bilinear", align_corners=False, antialias=True
            )
        normalised = (images - self.mean) / self.std
        return self.net(normalised.contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def activation_bytes(self, side: int) -> int:
        """Bytes of the activations one ``side`` x ``side`` image leaves in the
        network, which autograd keeps for a backward pass.

        Measured with one forward pass: the sum of every layer's output, an
        in-place layer's counted once (a view, such as a flatten, costs
        nothing). A step over a batch of B images takes somewhat more than B
        times this: see ``umask.optimise.STEP_MEMORY_FACTOR``.
        """
        caller = threading.get_ident()  # the model may be shared: count this thread's pass only
        total = 0

        def count(module: nn.Module, inputs: tuple, output) -> None:
            nonlocal total
            if threading.get_ident() != caller or not isinstance(output, torch.Tensor):
                return
            if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].data_ptr() == output.data_ptr():
                return  # in place (ReLU(inplace=True)): the same memory as its input
            total += output.numel() * output.element_size()

        hooks = [m.register_forward_hook(count) for m in self.net.modules() if next(m.children(), None) is None]
        try:
            self(torch.zeros(1, 3, side, side, device=self.device))
        finally:
            for hook in hooks:
                hook.remove()
        return total

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities ``(B, classes)`` for ``(B, 3, H, W)`` in [0, 1]."""
        return self.check_outputs(self(images.to(self.device)).softmax(dim=1))

    def check_outputs(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (this model's logits or probabilities), once they are all finite.

        Raises:
            UmaskError: a NaN or an infinity: damaged weights (a checkpoint
                saved mid-divergence), which would otherwise be saved as
                "nan %" predictions and a result.json that is not JSON.
        """
        # A finite sum means every value is finite (a NaN or an infinity
        # carries into it), and costs a fraction of the elementwise test;
        # only a sum that overflowed needs that test to tell.
        if not math.isfinite(float(values.sum())) and not bool(torch.isfinite(values).all()):
            raise UmaskError(f"The model {self.name} gives outputs that are not numbers (NaN or infinity); its weights "
                             "are damaged: use another checkpoint.")
        return values
