"""umask: one image, many classes. Universal masked images for ImageNet classifiers.

The public API, by name; see README.md for a tour.
"""

import logging

from .attacks import AttackResult, attack, fgsm, iterative_fgsm
from .config import PRESETS, Config
from .errors import UmaskError
from .evaluate import MaskedPredictions, as_fed_for, classify_masked, classify_parts, quantise
from .images import load_photo
from .jobs import Job, JobSnapshot
from .masks import FAMILIES, MODES, apply_masks, layout, load_layout, make_masks, part_indicators, study_part
from .models import DEFAULT_MODEL, STUDY_MODELS, Classifier, list_models, load_model
from .optimise import StepReport, UniversalSearch
from .results import Result, load_result, result_from_zip, result_to_zip, save_result
from .targets import choose_targets, imagenet_classes, resolve_class, search_classes

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AttackResult",
    "Job",
    "JobSnapshot",
    "Classifier",
    "Config",
    "DEFAULT_MODEL",
    "FAMILIES",
    "MODES",
    "MaskedPredictions",
    "PRESETS",
    "Result",
    "STUDY_MODELS",
    "StepReport",
    "UmaskError",
    "UniversalSearch",
    "apply_masks",
    "attack",
    "fgsm",
    "iterative_fgsm",
    "load_photo",
    "choose_targets",
    "as_fed_for",
    "classify_masked",
    "classify_parts",
    "imagenet_classes",
    "layout",
    "list_models",
    "load_layout",
    "load_model",
    "load_result",
    "make_masks",
    "part_indicators",
    "quantise",
    "resolve_class",
    "result_from_zip",
    "result_to_zip",
    "save_result",
    "search_classes",
    "study_part",
]
