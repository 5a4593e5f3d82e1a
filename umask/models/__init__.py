"""Frozen ImageNet classifiers behind one wrapper, found through one registry."""

from .registry import (
    DEFAULT_MODEL,
    RANDOM_WEIGHTS,
    STUDY_MODELS,
    ModelInfo,
    cached_weights_path,
    canonical_spec,
    checkpoint_path,
    list_models,
    load_model,
    model_info,
    partial_download,
    register_model,
    torchvision_classifier,
    torchvision_classifiers,
    weights_available,
)
from .wrapper import MAX_SIDE, Classifier, parse_resize

__all__ = [
    "Classifier",
    "DEFAULT_MODEL",
    "MAX_SIDE",
    "RANDOM_WEIGHTS",
    "ModelInfo",
    "STUDY_MODELS",
    "cached_weights_path",
    "canonical_spec",
    "checkpoint_path",
    "list_models",
    "load_model",
    "model_info",
    "parse_resize",
    "partial_download",
    "register_model",
    "torchvision_classifier",
    "torchvision_classifiers",
    "weights_available",
]
