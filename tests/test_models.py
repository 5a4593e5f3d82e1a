import dataclasses
import os
import re
import time

import pytest
import torch
import torchvision

from umask.config import Config
from umask.errors import UmaskError
from umask.models import STUDY_MODELS, cached_weights_path, list_models, load_model, weights_available
from umask.optimise import UniversalSearch
from umask.results import load_result, save_result
from umask.sweep import SweepPlan


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache, and no network: the state of a fresh offline laptop."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("UMASK_OFFLINE", "1")
    return tmp_path / "torch"


def test_registry_lists_bundled_and_study_models():
    names = [m.name for m in list_models()]
    assert names[0] == "efficientnet_lite0"
    assert set(STUDY_MODELS) <= set(names)
    study = {m.name: m for m in list_models() if m.in_study}
    assert set(study) == set(STUDY_MODELS)
    assert study["vgg16"].download_mb == pytest.approx(527.8, abs=0.1)


def test_offline_without_cache_names_file_and_folder(torch_home):
    with pytest.raises(UmaskError) as err:
        load_model("resnet50")
    message = str(err.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "\n" not in message


def test_real_weights_api_reads_the_torch_cache(torch_home):
    # What torchvision would have downloaded: a state dict under its file name.
    reference = torchvision.models.mobilenet_v3_small(weights=None).eval()
    path = cached_weights_path("mobilenet_v3_small")
    assert path.parent == torch_home / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    assert weights_available("mobilenet_v3_small")

    model = load_model("mobilenet_v3_small")
    x = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), reference((x - mean) / std), atol=1e-5)
    assert model.categories[1] == "goldfish" and model.native_size == 224


def test_a_cached_model_loads_while_another_architecture_downloads(torch_home):
    """One visitor's long vgg16 download must not hold up every other session's load."""
    import threading

    from umask.models import registry

    path = cached_weights_path("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), path)
    loaded = []
    with registry._download_lock("vgg16"), registry._download_lock("mobilenet_v3_small"):  # downloads in progress
        loader = threading.Thread(target=lambda: loaded.append(load_model("mobilenet_v3_small")), daemon=True)
        loader.start()
        loader.join(60)
        assert loaded and loaded[0].name == "mobilenet_v3_small"
    assert registry._download_lock("vgg16") is registry._download_lock("vgg16")


def test_corrupt_cached_weights_get_a_clear_error(torch_home, capsys):
    path = cached_weights_path("mobilenet_v3_small")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UmaskError, match="corrupt"):
        load_model("mobilenet_v3_small")
    from umask.cli import main

    main(["models"])  # an interrupted download is not reported as weights that are here
    listed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mobilenet_v3_small "))
    assert "partial (0 of 10 MB)" in listed
    assert not weights_available("mobilenet_v3_small")  # nor anywhere else (a sweep's dry run, the dashboard's labels)


def test_local_checkpoint_spec(tmp_path, torch_home):
    # GoogLeNet's published weights carry aux heads; the loader drops them.
    net = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    torch.save(net.state_dict(), tmp_path / "googlenet.pth")
    model = load_model(f"googlenet={tmp_path / 'googlenet.pth'}")
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
    with pytest.raises(UmaskError, match="does not fit the 'resnet18' architecture"):
        load_model(f"resnet18={tmp_path / 'googlenet.pth'}")
    with pytest.raises(UmaskError, match="does not exist"):
        load_model(f"resnet18={tmp_path / 'missing.pth'}")
    torch.save(net, tmp_path / "whole.pth")  # the whole module pickled, not its state dict
    with pytest.raises(UmaskError, match=r"is corrupt or not a PyTorch state dict; save one with torch.save\(model.state_dict\(\), PATH\)\.$"):
        load_model(f"googlenet={tmp_path / 'whole.pth'}")
    with pytest.raises(UmaskError, match=f"^The checkpoint of model resnet18, '{tmp_path}', is a folder, not a state-dict file.$"):
        load_model(f"resnet18={tmp_path}")


def test_a_relative_checkpoint_is_stored_absolute_so_results_open_from_any_folder(tmp_path, torch_home, monkeypatch):
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False).state_dict(),
               tmp_path / "g.pth")
    monkeypatch.chdir(tmp_path)
    config = Config(model=" googlenet = ./sub/../g.pth ", k=2, size=32, steps=1)
    assert config.model == f"googlenet={tmp_path / 'g.pth'}"
    assert SweepPlan(models=("googlenet=g.pth",), ks=(2,)).models == (config.model,)
    result = UniversalSearch(load_model(config.model), config).run()
    save_result(result, tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")  # elsewhere: the stored spec still finds the file
    loaded = load_result(tmp_path / "run")
    assert loaded.model == config.model
    assert load_model(loaded.model).name == config.model
    # The spec as typed, relative to here, is still the result's own model: it sees the image as it was made.
    from umask.evaluate import as_fed_for

    relative = f"googlenet={os.path.relpath(tmp_path / 'g.pth')}"
    resized = dataclasses.replace(loaded, preprocessing={**loaded.preprocessing, "resize_to": 96})
    assert as_fed_for(load_model(relative), relative, resized).resize_to == 96


def test_a_result_notices_its_checkpoint_file_has_changed(tmp_path, torch_home, capsys):
    import hashlib
    import json

    from umask.cli import main
    from umask.evaluate import weights_changed

    path = tmp_path / "g.pth"
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    config = Config(model=f"googlenet={path}", k=2, size=32, steps=1)
    result = UniversalSearch(load_model(config.model), config).run()
    assert result.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    save_result(result, tmp_path / "run")
    assert load_result(tmp_path / "run").weights_sha256 == result.weights_sha256  # it round-trips
    assert main(["evaluate", str(tmp_path / "run"), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "weights_changed" not in captured.out and "WARNING" not in captured.err
    # Retrained and saved over the same file: evaluate says so, in the table's warning and the JSON.
    torch.manual_seed(1)
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict(), path)
    assert weights_changed(load_model(config.model), config.model, load_result(tmp_path / "run"))
    assert main(["evaluate", str(tmp_path / "run"), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["models"][config.model]["weights_changed"] is True
    assert f"the checkpoint {path} holds other weights than when this result was made" in captured.err
    # Named weights carry no digest: nothing to compare, nothing said.
    assert load_model("efficientnet_lite0").weights_sha256 is None


def test_unknown_model():
    with pytest.raises(UmaskError, match="Unknown model 'resnet5'.*Did you mean resnet50"):
        load_model("resnet5")


def test_wrapper_is_frozen_and_normalises(tiny):
    assert not tiny.training and not any(p.requires_grad for p in tiny.parameters())
    tiny.train()
    assert not tiny.training
    x = torch.rand(1, 3, 16, 16)
    expected = tiny.net((x - tiny.mean) / tiny.std)
    assert torch.allclose(tiny(x), expected)


def test_resize_option(tiny):
    seen = []
    tiny.net.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape))
    tiny(torch.rand(1, 3, 16, 16))
    tiny.resize_to = 32
    tiny(torch.rand(1, 3, 16, 16))
    assert seen == [(1, 3, 16, 16), (1, 3, 32, 32)]
    assert tiny.preprocessing["resize_to"] == 32


def test_bundled_model_resize_native():
    model = load_model("efficientnet_lite0", resize_to="native")
    assert model.resize_to == 224
    assert model.preprocessing["mean"] == pytest.approx([127 / 255] * 3, abs=1e-6)


def test_other_models_see_a_result_at_a_size_they_take_and_its_own_model_as_it_was_made(tiny):
    from umask.config import Config
    from umask.evaluate import as_fed_for, classify_masked
    from umask.models import RANDOM_WEIGHTS, torchvision_classifier
    from umask.optimise import UniversalSearch

    result = UniversalSearch(tiny, Config(model="tiny", k=2, size=32, steps=2)).run()
    vit = torchvision_classifier("vit_b_16", RANDOM_WEIGHTS)
    fed = as_fed_for(vit, "vit_b_16", result)
    assert fed.resize_to == 224 and vit.resize_to is None  # a view: the shared model is untouched
    assert fed.net is vit.net and fed.mean is vit.mean  # same weights, no copy
    classify_masked(fed, result.image, result.masks)  # goes through
    resnet = torchvision_classifier("resnet18", RANDOM_WEIGHTS)
    assert as_fed_for(resnet, "resnet18", result).resize_to is None  # takes 32 x 32: fed as the study did
    resized = UniversalSearch(tiny.with_resize(24), Config(model="tiny", k=2, size=32, steps=2)).run()
    assert resized.resize_to == 24
    assert as_fed_for(tiny, "tiny", resized).resize_to == 24  # its own model, as it was made
    assert as_fed_for(resnet, "resnet18", resized).resize_to == 224  # made resized: the others at their native side
    with pytest.raises(UmaskError, match="Resize 'huge' is not allowed"):
        load_model("efficientnet_lite0", resize_to="huge")


def test_fixed_size_architectures_say_so_instead_of_failing_inside_torch():
    from umask.attacks import predict
    from umask.config import Config
    from umask.models import RANDOM_WEIGHTS, torchvision_classifier
    from umask.optimise import UniversalSearch

    vit = torchvision_classifier("vit_b_16", RANDOM_WEIGHTS)
    assert vit.fixed_size == 224 and vit.name == "vit_b_16"
    # The library names no option of any front end; a caller that has one passes it.
    with pytest.raises(UmaskError, match=r"vit_b_16 takes only 224 x 224 images, not 256 x 256; make the image 224 pixels a side\.$"):
        UniversalSearch(vit, Config(model="vit_b_16", k=2, size=256, steps=1))
    with pytest.raises(UmaskError, match=r"not 256 x 256; use --resize native \(or make the image 224 pixels a side\)\.$"):
        vit.check_side(256, resize_option="--resize native")
    with pytest.raises(UmaskError, match=r"not 256 x 256; use --resize native \(or --size 224\)\.$"):
        vit.check_side(256, resize_option="--resize native", size_option="--size")
    with pytest.raises(UmaskError, match=r"not 256 x 256; use --size 224\.$"):
        vit.check_side(256, size_option="--size")
    with pytest.raises(UmaskError, match="takes only 224 x 224"):
        predict(vit, torch.rand(3, 224, 256))
    vit.resize_to = 224  # --resize native: any size goes in
    vit.check_side(256)
    assert torchvision_classifier("resnet18", RANDOM_WEIGHTS).fixed_size is None


def test_checkpoints_are_for_classification_models_only(tmp_path, torch_home):
    (tmp_path / "w.pt").write_bytes(b"x")
    with pytest.raises(UmaskError, match="Unknown model 'fasterrcnn_resnet50_fpn'"):
        load_model(f"fasterrcnn_resnet50_fpn={tmp_path / 'w.pt'}")


def test_random_weight_builds_match_the_pretrained_architecture(torch_home):
    # GoogLeNet as its pretrained builder makes it (transform_input on, no aux heads),
    # for the sweep's and the benchmark's timings alike.
    from umask.models import RANDOM_WEIGHTS, torchvision_classifier
    from umask.timing import timing_model

    net = torchvision_classifier("googlenet", RANDOM_WEIGHTS).net
    assert net.transform_input and net.aux1 is None
    model, kind = timing_model("googlenet")
    assert kind == "random (timing only)" and model.net.transform_input


def test_a_timing_never_downloads_weights(torch_home, monkeypatch):
    """Weights not here: the architecture with random weights, without a try
    at loading (which downloads whenever the internet is reachable)."""
    from umask import timing

    monkeypatch.setattr(timing, "load_model", lambda *a, **k: pytest.fail("tried to load (and download) vgg16"))
    model, kind = timing.timing_model("alexnet")
    assert kind == "random (timing only)" and model.name == "alexnet"
    monkeypatch.undo()
    model, kind = timing.timing_model("efficientnet_lite0")  # bundled: its real weights cost nothing
    assert kind == "real"


@pytest.mark.parametrize("name,message", [
    ("tpu", "Unknown device 'tpu'"),
    ("cuda:x", "Unknown device 'cuda:x'"),
    ("cuda:99", "does not exist" if torch.cuda.is_available() else "has no CUDA GPU"),
])
def test_device_names(name, message):
    from umask.devices import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UmaskError, match=message):
        resolve_device(name)


def test_cuda_names_on_a_machine_with_two_gpus(monkeypatch):
    """The CUDA branch without a GPU: torch says two GPUs are present."""
    from umask.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device(" CUDA:1 ") == torch.device("cuda", 1)
    assert resolve_device("auto") == torch.device("cuda")
    for name in ("cuda:", "cuda:-1", "cuda:1.0", "cuda:x"):
        with pytest.raises(UmaskError, match=f"Unknown device '{re.escape(name)}'; use cpu, cuda, cuda:N"):
            resolve_device(name)
    with pytest.raises(UmaskError, match=r"this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_the_offline_probe_defers_to_a_proxy(monkeypatch):
    from umask.models.registry import _can_download

    url = "https://download.pytorch.org/models/resnet50.pth"
    monkeypatch.setenv("UMASK_OFFLINE", "1")
    assert not _can_download(url)
    monkeypatch.delenv("UMASK_OFFLINE")
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    assert _can_download(url)  # the download itself is tried through the proxy
    started = time.monotonic()
    monkeypatch.delenv("https_proxy")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    assert not _can_download("https://host.invalid/x.pth", timeout=0.5)
    assert time.monotonic() - started < 5  # bounded, name lookup included


def _half_blind():
    """Runs from 16 pixels a side and sees (can learn an image) from 32, as
    EfficientNet-Lite0 runs from 32 and sees from 64."""
    from .conftest import tiny_classifier

    model = tiny_classifier()
    model.name, model.native_size, model.min_size, model.min_run_size = "halfblind", 48, 32, 16
    return model


def test_an_image_below_the_side_a_model_sees_at_is_measured_but_never_made(tmp_path, capsys):
    from umask.attacks import attack
    from umask.evaluate import classify_parts, transfer_report
    from umask.geometry import decision_slice
    from umask.masks import layout, make_masks

    from .conftest import registered, run_cli, tiny_classifier

    model = _half_blind()
    with registered("halfblind", _half_blind):
        # A 24 px result made before the model's limit was known (as an older umask made Lite0's at 32-63).
        maker = tiny_classifier()
        maker.name = "halfblind"
        save_result(UniversalSearch(maker, Config(model="halfblind", k=2, size=24, steps=3)).run(), tmp_path / "old")
        old = load_result(tmp_path / "old")
        assert transfer_report(tmp_path / "old")["models"]["halfblind"]["predictions"] == list(old.predictions)
        assert decision_slice(model, old.image, make_masks(old.labels), i=0, j=1, resolution=3) is not None
        with pytest.raises(UmaskError, match="Image size 15 is too small for halfblind, which needs at least 16 pixels"):
            classify_parts(model, torch.rand(3, 15, 15), layout("hstripes", 2, 15))
        # Making an image at 24 is refused everywhere, in one sentence, and writes nothing.
        sees = "Image size 24 is too small for halfblind, which needs at least 32 pixels a side"
        with pytest.raises(UmaskError, match=sees):
            UniversalSearch(model, Config(model="halfblind", k=2, size=24))
        with pytest.raises(UmaskError, match=sees):
            attack(model, torch.rand(3, 24, 24), eps=0.01)
        common = ["--model", "halfblind", "--size", "24"]
        for argv in (["generate", *common, "--k", "2", "--steps", "1", "--out", tmp_path / "new"],
                     ["fgsm", tmp_path / "old" / "universal.png", *common, "--eps", "0.01", "--out", tmp_path / "adv.png"],
                     ["sweep", "--models", "halfblind", "--size", "24", "--k", "2", "--steps", "1", "--out", tmp_path / "sw"]):
            code, _, err = run_cli(capsys, *argv)
            assert code == 2 and sees in err and err.count("\n") == 1, (argv[0], err)
        assert not [p.name for p in tmp_path.iterdir() if p.name != "old"]
        # A side chosen now to feed it (--resize) is one to see at, too.
        code, _, err = run_cli(capsys, "evaluate", tmp_path / "old", "--resize", "24")
        assert code == 2 and "A resize to 24 pixels is too small for halfblind, which needs at least 32" in err
