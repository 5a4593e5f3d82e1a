"""How long an optimisation step takes: measured on the model itself, for estimates before long work.

A sweep estimates its time from a few timed steps per model (``sweep
--estimate`` and the plan it prints), and the benchmark times umask's steps
against a bare loop; both time a model whose weights may not be here, with
the same architecture and random weights (same layers, same cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config
from .devices import resolve_device
from .errors import UmaskError
from .models import RANDOM_WEIGHTS, Classifier, load_model, torchvision_classifier, torchvision_classifiers, weights_available
from .optimise import UniversalSearch


@dataclass(frozen=True)
class StepTiming:
    """Measured seconds per optimisation step of one model at a few K.

    Attributes:
        model: the spec.
        weights: "real" or "random (timing only)" when the weights were not
            here and the architecture was built with random weights.
        seconds: K -> mean seconds per step (after one warm-up step).
    """

    model: str
    weights: str
    seconds: dict[int, float]

    def per_step(self, k: int) -> float:
        """Seconds per step at K, linear in K between (and beyond) the measured points."""
        ks = sorted(self.seconds)
        if len(ks) == 1:
            return self.seconds[ks[0]] * k / ks[0]
        if ks[0] <= k <= ks[-1]:
            return float(np.interp(k, ks, [self.seconds[x] for x in ks]))
        lo, hi = ks[0], ks[-1]  # a step costs about a + b*K: extend the line
        return self.seconds[lo] + (self.seconds[hi] - self.seconds[lo]) * (k - lo) / (hi - lo)


def timing_model(spec: str, *, device: str = "cpu") -> tuple[Classifier, str]:
    """The model for timing: real weights when here, else the torchvision architecture with random weights.

    Random weights cost the same per step as real ones (same layers, same
    shapes); they are used for timing only, never for results. Weights not
    here are never downloaded for a timing (vgg16's are 528 MB).
    """
    if spec not in torchvision_classifiers() or weights_available(spec):
        try:
            return load_model(spec, device=device), "real"
        except UmaskError:  # a damaged cache, say: the architecture still times the same
            if spec not in torchvision_classifiers():
                raise
    model = torchvision_classifier(spec, RANDOM_WEIGHTS)
    return model.to(resolve_device(device)), "random (timing only)"


def time_steps(model: Classifier, *, ks: tuple[int, ...] = (2, 62), size: int = 64, steps: int = 3,
               preset: str = "seed", family: str = "hstripes") -> dict[int, float]:
    """Mean seconds per optimisation step at each K (one warm-up step, then ``steps`` timed ones)."""
    out = {}
    for k in ks:
        config = Config.preset(preset, model=model.name, mask_family=family, k=k, size=size, steps=steps + 1,
                               stop_at_success=False, snapshot_every=0)
        times = [report.seconds for report in UniversalSearch(model, config)]
        out[k] = (times[-1] - times[0]) / steps
    return out
