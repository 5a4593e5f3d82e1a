"""The engine on a CUDA GPU: skipped on machines without one (CI's), run on a lent GPU.

Beyond "it runs": what a GPU makes must be what a CPU user gets back, so every
result made on CUDA is re-read from disk and re-classified on the CPU too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from umask import attacks
from umask.config import Config
from umask.evaluate import classify_parts, transfer_report
from umask.geometry import decision_slice
from umask.images import load_photo
from umask.masks import layout, make_masks
from umask.models import load_model
from umask.optimise import UniversalSearch
from umask.results import load_result, save_result
from umask.sweep import SweepPlan, read_rows, run_sweep

from .conftest import run_cli

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

CAT = Path(__file__).resolve().parent.parent / "assets" / "cat.jpg"


@pytest.fixture(scope="module")
def lite0_cuda():
    return load_model("efficientnet_lite0", device="cuda")


def test_tiny_model_reaches_targets_on_cuda(tiny):
    model = tiny.to("cuda")
    config = Config(model="tiny", k=4, mask_family="hstripes", size=16, steps=300, device="cuda")
    result = UniversalSearch(model, config).run()
    assert result.success_rate == 1.0 and result.image.device.type == "cpu"


@pytest.mark.real
@pytest.mark.parametrize("family", ["hstripes", "grid"])
def test_k10_on_cuda_reaches_100_percent_and_the_cpu_agrees(lite0_cuda, lite0, family, tmp_path):
    result = UniversalSearch(lite0_cuda, Config(k=10, mask_family=family, seed=0, device="cuda")).run()
    assert result.success_rate == 1.0, result.predictions
    save_result(result, tmp_path / family)
    back = load_result(tmp_path / family)
    for model in (lite0_cuda, lite0):
        again = classify_parts(model, back.image, back.labels, mode=back.mask_mode, fill=back.fill, targets=back.targets)
        assert again.predictions == back.targets, (str(model.device), again.target_probs)


@pytest.mark.real
def test_cli_generate_on_cuda_is_reproduced_by_evaluate_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "generate", "--k", "4", "--masks", "grid", "--seed", "1",
                                "--device", "cuda", "--out", out)
    assert code == 0, err
    saved = json.loads((out / "result.json").read_text())
    assert saved["config"]["device"].startswith("cuda") and saved["success_rate"] == 1.0  # as the model ran: cuda:0
    on_cpu = transfer_report(out)["models"]["efficientnet_lite0"]
    assert on_cpu["predictions"] == saved["predictions"] == saved["targets"] and on_cpu["matches_saved"]


@pytest.mark.real
def test_fgsm_on_cuda_changes_the_cat_inside_the_ball(lite0_cuda, lite0):
    photo = load_photo(CAT, size=lite0.native_size)
    result = attacks.attack(lite0_cuda, photo, eps=0.02)
    assert result.adversarial.device.type == "cpu"
    assert result.source == int(attacks.predict(lite0, photo).argmax())
    assert result.adversarial_top1 != result.source
    assert float((result.adversarial - photo).abs().max()) <= 0.02 + 1e-6


@pytest.mark.real
def test_slice_on_cuda_centre_is_classified_as_x(lite0_cuda, lite0):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3))
    sl = decision_slice(lite0_cuda, image, make_masks(layout("hstripes", 8, 64), "hide"), i=0, j=4, resolution=9)
    assert sl.centre_class == int(lite0(image[None]).argmax()) == int(lite0_cuda(image[None].cuda()).argmax())


@pytest.mark.real
def test_sweep_on_cuda_writes_rows_a_cpu_reads_back(tmp_path, lite0):
    plan = SweepPlan(models=("efficientnet_lite0",), families=("hstripes",), ks=(2, 4), preset="fast",
                     steps=300, device="cuda")
    run_sweep(plan, tmp_path)
    rows = read_rows(tmp_path / "results.csv")
    assert [int(r["k"]) for r in rows] == [2, 4] and all(float(r["success_rate"]) == 1.0 for r in rows)
    for row in rows:
        back = load_result(tmp_path / row["folder"])
        again = classify_parts(lite0, back.image, back.labels, mode=back.mask_mode, fill=back.fill, targets=back.targets)
        assert again.predictions == back.targets
