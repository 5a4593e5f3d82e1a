"""umask: one image, many classes. Universal masked images for ImageNet classifiers.

The public API, by name; see README.md for a tour. Names load on first use
(PEP 562): importing the package costs nothing, so ``python -m umask`` can
catch a Ctrl-C that lands while torch is still importing (``__main__``).
"""

import importlib
import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Public name -> the module that defines it.
_HOMES = {
    "AttackResult": "attacks", "attack": "attacks", "fgsm": "attacks", "iterative_fgsm": "attacks",
    "PRESETS": "config", "Config": "config",
    "UmaskError": "errors",
    "MaskedPredictions": "evaluate", "as_fed_for": "evaluate", "classify_masked": "evaluate",
    "classify_parts": "evaluate",
    "load_photo": "images", "quantise": "images",
    "Job": "jobs", "JobSnapshot": "jobs",
    "FAMILIES": "masks", "MODES": "masks", "apply_masks": "masks", "layout": "masks", "load_layout": "masks",
    "make_masks": "masks", "part_indicators": "masks", "study_part": "masks",
    "DEFAULT_MODEL": "models", "STUDY_MODELS": "models", "Classifier": "models", "list_models": "models",
    "load_model": "models",
    "StepReport": "optimise", "UniversalSearch": "optimise",
    "Result": "results", "load_result": "results", "result_from_zip": "results", "result_to_zip": "results",
    "save_result": "results",
    "choose_targets": "targets", "imagenet_classes": "targets", "resolve_class": "targets",
    "search_classes": "targets",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'umask' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
