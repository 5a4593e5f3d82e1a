"""The bundled EfficientNet-Lite0 with its real ImageNet weights."""

from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from umask.config import Config
from umask.errors import UmaskError
from umask.evaluate import classify_parts
from umask.masks import layout
from umask.optimise import UniversalSearch
from umask.results import load_result, save_result

pytestmark = pytest.mark.real

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_cat_photo_is_a_cat(lite0):
    photo = TF.to_tensor(Image.open(ASSETS / "cat.jpg").convert("RGB"))
    for side in (224, 64):
        image = TF.resize(TF.center_crop(photo, min(photo.shape[1:])), [side, side], antialias=True)
        probs = lite0.probabilities(image[None])[0]
        top = int(probs.argmax())
        assert top in CAT_CLASSES, (side, lite0.categories[top])
        assert float(probs[list(CAT_CLASSES)].sum()) > 0.8
        if side == 224:
            # At its native side, the Egyptian cat; with ImageNet's usual std in
            # place of the package's (x - 127) / 128 it would say tabby (281).
            assert top == 285, lite0.categories[top]


def test_the_bundled_model_is_fed_as_its_package_documents(lite0):
    """The TensorFlow-trained Lite weights take (pixel - 127) / 128 on the 0-255 scale."""
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(lite0(x), lite0.net((255 * x - 127) / 128), atol=1e-4)
    assert lite0.preprocessing == {"mean": [round(127 / 255, 6)] * 3, "std": [round(128 / 255, 6)] * 3, "resize_to": None}


@pytest.mark.parametrize("family", ["hstripes", "grid"])
def test_k10_reaches_100_percent_on_the_saved_png(lite0, family, tmp_path):
    cfg = Config(k=10, mask_family=family, seed=0)
    result = UniversalSearch(lite0, cfg).run()
    assert result.success_rate == 1.0, result.predictions
    save_result(result, tmp_path / family)
    back = load_result(tmp_path / family)
    again = classify_parts(lite0, back.image, back.labels, mode=back.mask_mode, fill=back.fill, targets=back.targets)
    assert again.predictions == back.targets == result.predictions


def test_the_smallest_side_is_the_least_the_model_sees_at(lite0):
    # Lite pads for its training size: it fails below 32 pixels, and below 64
    # (a 1 x 1 last feature map) it runs but is all but blind, so no image
    # can be optimised there; the engine says so in one sentence.
    assert lite0.min_size == 64
    with pytest.raises(RuntimeError):
        lite0.net(torch.zeros(1, 3, 31, 31))
    noise = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        blind = (lite0(noise[:, :, :63, :63])[0] - lite0(noise[:, :, :63, :63])[1]).abs().max()
        seeing = (lite0(noise)[0] - lite0(noise)[1]).abs().max()
    assert blind < 1.0 < seeing, (float(blind), float(seeing))
    with pytest.raises(UmaskError, match="Image size 63 is too small for efficientnet_lite0, which needs at least 64 pixels"):
        UniversalSearch(lite0, Config(k=2, size=63))
    # An image that exists (results saved at 32-63 before this limit) is
    # still measured: classifying needs only a forward that runs.
    assert lite0.min_run_size == 32
    labels = layout("hstripes", 2, 48)
    assert len(classify_parts(lite0, torch.rand(3, 48, 48), labels).predictions) == 2
    with pytest.raises(UmaskError, match="Image size 31 is too small for efficientnet_lite0, which needs at least 32 pixels"):
        classify_parts(lite0, torch.rand(3, 31, 31), layout("hstripes", 2, 31))
