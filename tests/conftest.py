"""Shared fixtures: a tiny random classifier (fast, no download) and the bundled model."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
import torch
from torch import nn

from umask.cli import main
from umask.config import Config
from umask.devices import share_of_cores
from umask.models import Classifier, ModelInfo, load_model, register_model, registry
from umask.targets import imagenet_classes

# The pages compute with share_of_cores() torch threads (ui.server.configure_torch,
# which also sets the count of every thread started after it). The tests' own
# reference computations use the same count from the start, so a page's
# probabilities equal the engine's on any machine and in any test order (a
# float sum's rounding follows the thread count).
torch.set_num_threads(share_of_cores())

def tiny_classifier(seed: int = 0) -> Classifier:
    """A small random CNN with 1000 ImageNet outputs; steerable in a few steps."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.Tanh(),  # signed features: any of the 1000 classes can win
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * 16, 1000),
    )
    with torch.no_grad():
        net[-1].weight.mul_(20.0)  # peaked logits, like a trained model
    return Classifier(
        net,
        name="tiny",
        categories=imagenet_classes(),
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
        native_size=16,
        min_size=4,
    )


class _Failing(nn.Module):
    """A network whose every forward raises ``error`` (module level: a worker process unpickles it)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


class _ThreadCounting(nn.Module):
    """A network that fails with the torch thread count it runs with (module level: a worker unpickles it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(f"torch threads: {torch.get_num_threads()}")


def thread_counting_classifier() -> Classifier:
    """A classifier whose run fails saying how many torch threads its process used."""
    return Classifier(_ThreadCounting(), name="threads", categories=imagenet_classes(), mean=[0.5] * 3, std=[0.5] * 3,
                      native_size=16)


def failing_classifier(error: Exception) -> Classifier:
    """A classifier that raises ``error`` on any input: a crash, or running out of memory."""
    return Classifier(_Failing(error), name="failing", categories=imagenet_classes(), mean=[0.5] * 3, std=[0.5] * 3,
                      native_size=16)


def small(**kw) -> Config:
    """A search the tiny model finishes in well under a second: K = 4 stripes on 16 x 16."""
    base = dict(model="tiny", k=4, size=16, mask_family="hstripes", steps=300, seed=0, snapshot_every=5)
    return Config(**{**base, **kw})


@pytest.fixture
def tiny() -> Classifier:
    return tiny_classifier()


@pytest.fixture(scope="session")
def lite0() -> Classifier:
    """The bundled EfficientNet-Lite0 with its real ImageNet weights."""
    return load_model("efficientnet_lite0")


@contextmanager
def registered(name: str, builder) -> Iterator[str]:
    """``builder`` loadable by ``name`` through the registry while the block runs."""
    register_model(ModelInfo(name, "test model", "bundled"))(builder)
    try:
        yield name
    finally:
        registry._REGISTRY.pop(name)


@pytest.fixture
def tiny_registered():
    """The tiny model, loadable by name ("tiny") through the registry, for CLI-level tests."""
    with registered("tiny", tiny_classifier) as name:
        yield name


def tiny32() -> Classifier:
    """The tiny model as one that needs at least 32 pixels a side (trained at 48)."""
    model = tiny_classifier()
    model.name, model.native_size = "tiny32", 48
    model.min_size = model.min_run_size = 32
    return model


@pytest.fixture
def tiny32_registered():
    """:func:`tiny32`, loadable by name ("tiny32")."""
    with registered("tiny32", tiny32) as name:
        yield name


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``python -m umask ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
