"""The optimisation: targets reached, early stop on the 8-bit image, determinism, presets, config checks."""

import math
import re

import pytest
import torch

from umask.config import Config
from umask.errors import UmaskError
from umask.evaluate import classify_masked
from umask.images import quantise
from umask.models import Classifier
from umask.optimise import UniversalSearch

from .conftest import small


def test_reaches_every_target_and_stops_early(tiny):
    search = UniversalSearch(tiny, small())
    reports = list(search)
    assert reports[-1].done and search.succeeded
    assert reports[-1].step < 300  # stopped early
    result = search.result()
    assert result.success_rate == 1.0 and result.predictions == result.targets
    # Measured on the 8-bit image: the saved image's own predictions.
    check = classify_masked(tiny, result.image, search.masks, targets=result.targets)
    assert check.predictions == result.targets
    assert torch.equal(result.image, quantise(result.image))


def test_stream_contents(tiny):
    search = UniversalSearch(tiny, small(steps=12, stop_at_success=False, snapshot_every=5))
    reports = list(search)
    assert [r.step for r in reports] == list(range(1, 13))
    with_image = [r.step for r in reports if r.image is not None]
    assert with_image == [5, 10, 12]  # every 5 steps, and the last
    r = reports[-1]
    assert r.image.shape == (3, 16, 16) and len(r.target_probs) == 4 and len(r.predictions) == 4
    assert r.seconds > 0
    for r in reports:  # the rate is the share of masks whose prediction is its target
        assert r.success_rate == sum(p == t for p, t in zip(r.predictions, search.targets)) / 4
    assert all(b.best_success_rate >= a.best_success_rate for a, b in zip(reports, reports[1:]))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "sign"])
def test_box_constraint_holds_every_step(tiny, optimizer):
    # The clamp parametrisation is the one that can leave the box (the sigmoid one cannot by construction).
    search = UniversalSearch(tiny, small(steps=15, lr=5.0, optimizer=optimizer, parametrisation="clamp", stop_at_success=False))
    for _ in search:
        x = search.pixels()
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_loss_goes_down(tiny):
    reports = list(UniversalSearch(tiny, small(k=8, steps=40, stop_at_success=False, loss="ce", mask_family="grid")))
    assert reports[-1].loss < reports[0].loss * 0.5


def test_stop_keeps_best_image_so_far(tiny):
    # Large signed steps: the success rate climbs and falls back, so the best
    # image and the last one differ.
    search = UniversalSearch(tiny, small(k=6, optimizer="sign", lr=0.2, stop_at_success=False, snapshot_every=1))
    seen = []
    for report in search:
        seen.append(report)
        if report.success_rate <= report.best_success_rate - 0.3:
            break  # stopped in a dip
    result = search.result()
    assert result.steps == len(seen) < 300
    top = max(r.success_rate for r in seen)
    best = min((r for r in seen if r.success_rate == top), key=lambda r: r.loss)  # ties: the lower loss
    assert torch.equal(result.image, best.image) and not torch.equal(result.image, seen[-1].image)
    assert result.success_rate == top > seen[-1].success_rate  # measured again on the saved image
    assert result.final_loss == best.loss != seen[-1].loss  # the kept image's loss, not the last step's


def test_the_early_stop_is_confirmed_on_the_8_bit_image(tiny, monkeypatch):
    """The check that ends a search sees the image as the PNG will hold it."""
    from umask import optimise

    checked = []

    def recording(model, image, *args, **kwargs):
        checked.append(image.detach().clone())
        return classify_masked(model, image, *args, **kwargs)

    monkeypatch.setattr(optimise, "classify_masked", recording)
    search = UniversalSearch(tiny, small())
    list(search)
    assert search.succeeded and checked
    for image in checked:
        assert torch.equal(image * 255, (image * 255).round())  # on the 256 levels, not the float pixels
    assert torch.equal(checked[-1], search.result().image)


def test_a_mask_the_8_bit_image_misses_keeps_the_search_moving(tiny, monkeypatch):
    """When the batch says 100 % but the 8-bit check disagrees, the masks it
    misses still pull: the image changes, not the same one measured again."""
    from umask import optimise
    from umask.evaluate import MaskedPredictions

    def eight_bit_check_misses_mask_0(*args, **kwargs):
        found = classify_masked(*args, **kwargs)
        probs = found.probs.clone()
        probs[0] = 0.0
        probs[0, 0] = 1.0  # mask 0 says class 0, never a target of seed 0 here
        return MaskedPredictions(probs, found.targets)

    monkeypatch.setattr(optimise, "classify_masked", eight_bit_check_misses_mask_0)
    search = UniversalSearch(tiny, small(steps=80))
    assert 0 not in search.targets
    seen_all_hits = []
    for report in search:
        if report.success_rate == 1.0:
            seen_all_hits.append(search.pixels().detach().clone())
    assert not search.succeeded and len(seen_all_hits) >= 5
    # The last step takes no update: the two before it must differ.
    assert not torch.equal(seen_all_hits[-2], seen_all_hits[-3])


def test_the_result_records_the_device_and_resize_of_the_model_that_ran(tiny):
    result = UniversalSearch(tiny, small(steps=2, device="auto", resize_to=32)).run()
    assert result.config["device"] == "cpu" and result.config["resize_to"] is None
    assert result.preprocessing["resize_to"] is None


def test_deterministic_on_cpu(tiny):
    a = UniversalSearch(tiny, small(steps=20, stop_at_success=False)).run()
    b = UniversalSearch(tiny, small(steps=20, stop_at_success=False)).run()
    c = UniversalSearch(tiny, small(steps=20, stop_at_success=False, seed=1)).run()
    assert torch.equal(a.image, b.image) and a.final_loss == b.final_loss
    assert not torch.equal(a.image, c.image)


def test_stop_margin_demands_a_lead(tiny):
    search = UniversalSearch(tiny, small(stop_margin=0.3, steps=400))
    search.run()
    assert search.succeeded
    out = classify_masked(tiny, search.best_image(), search.masks, targets=search.targets)
    for k, t in enumerate(search.targets):
        others = out.probs[k].clone()
        others[t] = -1
        assert out.probs[k, t] - others.max() >= 0.3


def test_the_study_preset_steps_as_the_study_wrote_it(tiny):
    """Plain SGD (no momentum), lr 0.1, on the mean cross-entropy of the K
    masked copies, pixels clamped to [0, 1]: the study's loop, written out."""
    import torch.nn.functional as F

    from umask.masks import apply_masks

    search = UniversalSearch(tiny, Config.preset("seed", model="tiny", k=4, size=16, steps=4, stop_at_success=False))
    x, targets = search.pixels().detach().clone(), torch.tensor(search.targets)
    for report in search:
        x.requires_grad_(True)
        logits = tiny(apply_masks(x, search.masks, 0.0))
        loss = F.cross_entropy(logits, targets)
        (grad,) = torch.autograd.grad(loss, x)
        probs = logits.detach().softmax(dim=1)
        # The streamed figures describe the image before the step.
        assert report.loss == pytest.approx(float(loss.detach()), rel=1e-5)
        assert report.target_probs == pytest.approx(probs[torch.arange(4), targets].tolist(), rel=1e-4, abs=1e-7)
        assert report.predictions == tuple(probs.argmax(dim=1).tolist())
        x = (x.detach() - 0.1 * grad).clamp(0.0, 1.0)
        if not report.last:  # the last step measures, and moves nothing
            assert torch.allclose(search.pixels(), x, atol=1e-6), f"step {report.step}"


def test_study_preset_is_exact():
    seed = Config.preset("seed")
    assert (seed.optimizer, seed.lr, seed.steps, seed.size, seed.loss) == ("sgd", 0.1, 5000, 64, "ce")
    assert seed.schedule == "constant" and not seed.quantised_forward and seed.parametrisation == "clamp"
    assert not seed.balance_masks  # the study summed the copies' gradients as they came
    assert Config.preset("seed", k=62).k == 62


def test_config_errors():
    with pytest.raises(UmaskError, match="at least 2 masks"):
        Config(k=1)
    with pytest.raises(UmaskError, match="^K = 1001 is more masks than ImageNet has classes; .* so K may be at most 1000.$"):
        Config(k=1001, size=128)
    with pytest.raises(UmaskError, match="Unknown optimizer 'rmsprop'"):
        Config(optimizer="rmsprop")
    with pytest.raises(UmaskError, match="outside \\[0, 1\\]"):
        Config(fill=2)
    with pytest.raises(UmaskError, match="Unknown preset"):
        Config.preset("slow")
    with pytest.raises(UmaskError, match="needs a part-map image"):
        Config(mask_family="custom")
    for knobs, message in (({"lr_floor": 1.5}, "lr_floor = 1.5 must lie in \\[0, 1\\]"), ({"lr_floor": -0.1}, "lr_floor"),
                           ({"patience": 0}, "patience = 0 must be at least 1 step"),
                           ({"kappa": -1.0}, "kappa = -1.0 must be a finite logit margin"),
                           ({"kappa": float("inf")}, "kappa = inf")):
        with pytest.raises(UmaskError, match=message):
            Config(**knobs)
    assert Config(fill="mean").fill == "mean" and Config(fill="0.5").fill == 0.5


def test_config_refuses_numbers_of_the_wrong_kind_and_keeps_plain_ones():
    import numpy as np

    for knobs, message in (({"steps": 2.5}, "Steps must be a whole number, not 2.5."),  # would have run 3 steps
                           ({"k": "4"}, "K must be a whole number, not '4'."),
                           ({"seed": True}, "Seed must be a whole number, not True."),
                           ({"lr": "0.1"}, "Learning rate must be a number, not '0.1'."),
                           ({"stop_at_success": 1}, "Stop at success must be true or false, not 1.")):
        with pytest.raises(UmaskError, match=f"^{re.escape(message)}$"):
            Config(**knobs)
    # numpy's numbers (a dashboard widget, a script) become plain ones, so result.json stays JSON.
    cfg = Config(k=np.int64(3), lr=np.float32(0.5), stop_at_success=np.bool_(False), kappa=2)
    assert (type(cfg.k), type(cfg.lr), type(cfg.stop_at_success), type(cfg.kappa)) == (int, float, bool, float)
    assert (cfg.k, cfg.lr, cfg.stop_at_success, cfg.kappa) == (3, 0.5, False, 2.0)


def test_config_targets_by_name_or_index():
    import numpy as np

    cfg = Config(k=4, targets=("goldfish", "Volcano", np.int64(3), "281"))
    assert cfg.targets == (1, 980, 3, 281)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UmaskError, match="Class name 'goldf' is ambiguous: it could be 'goldfish' \\(1\\), 'goldfinch' \\(11\\)"):
        Config(k=2, targets=("goldf", 2))
    with pytest.raises(UmaskError, match="Targets must be a list of K classes, not the single value 'tabby'"):
        Config(k=5, targets="tabby")
    with pytest.raises(UmaskError, match="Target 1.5 is not a class; give an ImageNet class name or an index 0-999"):
        Config(k=2, targets=(1.5, 2))
    # K distinct classes, checked when the config is made, not at the first step.
    with pytest.raises(UmaskError, match=r"^2 targets given for K = 3 masks; give exactly 3 or none \(random\).$"):
        Config(k=3, targets=(1, 2))
    with pytest.raises(UmaskError, match=r"^Targets must be distinct, but 'goldfish' \(1\) appears more than once.$"):
        Config(k=3, targets=("goldfish", 1, 2))
    assert Config(k=3, targets=()).targets is None  # an empty list: random, as None


def test_an_explicit_part_map_must_match_the_image(tiny, tmp_path):
    from umask.masks import layout, save_layout_png

    three = tmp_path / "three.png"
    save_layout_png(layout("grid", 3, 16), three)

    with pytest.raises(UmaskError, match=r"^The part map is 32 x 32 pixels but the image is 16 x 16; they must agree.$"):
        UniversalSearch(tiny, small(size=16, k=4), labels=layout("grid", 4, 32))
    with pytest.raises(UmaskError, match=r"^The part map has 3 parts but K = 4; they must agree.$"):
        UniversalSearch(tiny, small(size=16, k=4), labels=layout("grid", 3, 16))
    # From a part map file (the custom family), numbered from 1: the sentence says so.
    with pytest.raises(UmaskError, match=r"^The part map has 3 parts but K = 4; they must agree \(value 0 marks no part, "
                                         r"so K parts are the values 1..K\).$"):
        UniversalSearch(tiny, small(size=16, k=4, mask_family="custom", layout_path=str(three)))


def test_size_too_small_for_model(tiny):
    tiny.min_size = 32
    with pytest.raises(UmaskError, match="too small for tiny, which needs at least 32"):
        UniversalSearch(tiny, small(size=16, k=2))
    with pytest.raises(UmaskError, match="Image size 3 is too small; use at least 8"):
        small(size=3, k=2)


def test_config_round_trips_through_dict():
    cfg = small(targets=(1, 2, 3, 4), fill="mean")
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_adam_beta2_reaches_the_optimiser_and_old_configs_keep_theirs(tiny):
    search = UniversalSearch(tiny, small(adam_beta2=0.95))
    next(iter(search))
    assert search._opt.param_groups[0]["betas"] == (0.9, 0.95)
    with pytest.raises(UmaskError, match="Adam's beta2 = 1.0 must lie in \\[0, 1\\)"):
        small(adam_beta2=1.0)
    saved = Config().to_dict()
    del saved["adam_beta2"]  # a result.json written before the knob existed
    assert Config.from_dict(saved).adam_beta2 == 0.999 and Config().adam_beta2 == 0.9


def test_balanced_gradients_pull_each_copy_equally():
    """Each copy's gradient reaches the image at unit length, whatever its loss scale."""
    from umask.masks import apply_masks, layout, make_masks
    from umask.optimise import _balance_gradients

    masks = make_masks(layout("hstripes", 3, 8), "keep")  # disjoint parts: contributions separable
    x = torch.rand(3, 8, 8, requires_grad=True)
    batch = _balance_gradients(apply_masks(x, masks, 0.0), masks)
    weights = torch.tensor([1.0, 1000.0, 0.0])  # a near-won mask, a far one, a won one (no gradient)
    (batch.pow(2).sum(dim=(1, 2, 3)) * weights).sum().backward()
    lengths = [float((x.grad * m).norm()) for m in masks]
    assert lengths == pytest.approx([1.0, 1.0, 0.0], abs=1e-5)
    # With weights, each copy reaches the image at its weight's length.
    x.grad = None
    batch = _balance_gradients(apply_masks(x, masks, 0.0), masks, lambda: torch.tensor([3.0, 0.5, 2.0]))
    (batch.pow(2).sum(dim=(1, 2, 3)) * weights).sum().backward()
    assert [float((x.grad * m).norm()) for m in masks] == pytest.approx([3.0, 0.5, 0.0], abs=1e-5)


def test_losing_streaks_count_steps_in_a_row_missed(tiny):
    search = UniversalSearch(tiny, small(k=6, steps=30, stop_at_success=False))
    streak = torch.zeros(6)
    for report in search:
        missed = torch.tensor([p != t for p, t in zip(report.predictions, search.targets)])
        streak = (streak + 1) * missed
        assert torch.equal(search._losing_streak, streak)
    with pytest.raises(UmaskError, match=r"Streak scale -1.0 must be 0 \(off\) or a number of steps, 1 or more"):
        small(streak_scale=-1.0)


def test_balance_masks_default_preset_and_old_configs(tiny):
    assert Config().balance_masks and not Config.preset("seed").balance_masks
    saved = Config().to_dict()
    del saved["balance_masks"], saved["streak_scale"]  # a result.json written before the knobs existed
    old = Config.from_dict(saved)
    assert not old.balance_masks and old.streak_scale == 0
    # Balancing changes the steps taken (same seed, same targets).
    on = [r.loss for r in UniversalSearch(tiny, small(steps=5, stop_at_success=False))]
    off = [r.loss for r in UniversalSearch(tiny, small(steps=5, stop_at_success=False, balance_masks=False))]
    assert on[0] == off[0] and on[1:] != off[1:]


def test_balanced_search_with_mean_fill_reaches_targets(tiny):
    # With fill "mean" the gradient also flows through the fill; balancing must still work.
    result = UniversalSearch(tiny, small(fill="mean", k=4, mask_family="grid")).run()
    assert result.success_rate == 1.0 and result.fill == "mean"


def test_keep_mode_and_grey_fill_reach_targets(tiny):
    result = UniversalSearch(tiny, small(mask_mode="keep", fill=0.5, k=3, mask_family="vstripes")).run()
    assert result.success_rate == 1.0 and result.mask_mode == "keep" and result.fill == 0.5


@pytest.mark.parametrize("loss", ["focused", "margin"])
def test_two_pass_step_follows_the_one_pass_trajectory(tiny, loss, monkeypatch):
    """Differentiating only the losing masks gives the same steps as the full batch."""
    import umask.optimise as optimise

    def trajectory(threshold: float):
        monkeypatch.setattr(optimise, "TWO_PASS_BELOW", threshold)
        # Not stopping at 100 %: the run goes on past the step where no mask
        # is losing any more, where neither path may move x.
        search = UniversalSearch(tiny, small(k=6, steps=60, loss=loss, stop_at_success=False))
        steps = []
        for r in search:
            steps.append((r.predictions, r.loss, search._active_fraction))
        return steps, search.pixels().detach().clone(), search._sched.last_epoch

    one_pass, x_one, updates_one = trajectory(0.0)  # never two passes (as on CUDA)
    two_pass, x_two, updates_two = trajectory(1.01)  # two passes from the second step on
    assert min(a for _, _, a in one_pass) == 0.0  # some steps had nothing losing
    assert [p for p, _, _ in one_pass] == [p for p, _, _ in two_pass]
    assert [l for _, l, _ in one_pass] == pytest.approx([l for _, l, _ in two_pass], rel=1e-4, abs=1e-5)
    assert torch.allclose(x_one, x_two, atol=1e-4)
    assert updates_one == updates_two < 59


def test_the_search_takes_its_gradients_under_a_callers_no_grad(tiny):
    with torch.no_grad():
        result = UniversalSearch(tiny, small()).run()
    assert result.success_rate == 1.0
    with torch.inference_mode():
        reports = list(UniversalSearch(tiny, small(steps=3, stop_at_success=False)))
        assert not torch.is_grad_enabled()  # and the caller's mode is back between steps
    assert len(reports) == 3


def test_the_model_must_be_the_one_the_config_names(tiny):
    with pytest.raises(UmaskError, match="The config names the model 'resnet50' but the search was given 'tiny'; "
                                         r"load the model the config names \(load_model\(config.model\)\)."):
        UniversalSearch(tiny, small(model="resnet50"))


def test_activation_bytes_counts_each_layer_output_once(tiny):
    # conv and tanh outputs, the pooled map and its flattened copy (channels_last does not flatten as a view), the logits
    assert tiny.activation_bytes(16) == 2 * 16 * 16 * 16 * 4 + 2 * 16 * 16 * 4 + 1000 * 4
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 1000))
    relu = Classifier(net, name="relu", categories=tiny.categories, mean=[0.5] * 3, std=[0.5] * 3, native_size=16)
    assert relu.activation_bytes(16) == 8 * 16 * 16 * 4 + 8 * 4 + 1000 * 4  # the in-place ReLU reuses the conv's memory


def test_a_search_that_cannot_fit_in_memory_is_refused_before_it_starts(tiny, monkeypatch):
    import umask.optimise as optimise

    need = optimise.STEP_MEMORY_FACTOR * 4 * tiny.activation_bytes(256)  # about 41 MB
    monkeypatch.setattr(optimise, "free_memory", lambda device: 30 * 2**20)
    with pytest.raises(UmaskError) as err:
        UniversalSearch(tiny, small(size=256))
    assert str(err.value) == (f"One step with K = 4 masked copies of a 256 x 256 image needs about {need / 2**20:.0f} MB "
                              "on tiny, more than the 30 MB free in this machine's memory; use a smaller image or fewer masks.")
    # Fed at a larger side, the resize is what costs: the sentence names it (it blamed the 16 x 16 image).
    with pytest.raises(UmaskError, match=r"^One step with K = 4 masked copies of a 16 x 16 image fed at 256 x 256 needs "
                                         r"about \d+ MB on tiny, .*; use a smaller resize \(or none\) or fewer masks.$"):
        UniversalSearch(tiny.with_resize(256), small(size=16))
    monkeypatch.setattr(optimise, "free_memory", lambda device: None)  # unknown: no refusal
    UniversalSearch(tiny, small(size=256))
    monkeypatch.undo()
    UniversalSearch(tiny, small(size=256))  # this machine's real free memory takes it


def test_free_memory_reads_the_machine_and_a_container_limit(tmp_path, monkeypatch):
    from umask import devices

    cpu = torch.device("cpu")
    (tmp_path / "meminfo").write_text("MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n")
    monkeypatch.setattr(devices, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(devices, "CGROUP", tmp_path / "cgroup")
    assert devices.free_memory(cpu) == 4_000_000 * 1024  # no cgroup: the machine's
    (tmp_path / "cgroup").mkdir()
    (tmp_path / "cgroup" / "memory.max").write_text("max\n")
    (tmp_path / "cgroup" / "memory.current").write_text("123\n")
    (tmp_path / "cgroup" / "memory.stat").write_text("anon 100\ninactive_file 300\nactive_file 50\n")
    assert devices.free_memory(cpu) == 4_000_000 * 1024  # a cgroup without a limit
    (tmp_path / "cgroup" / "memory.max").write_text(f"{2**30}\n")
    (tmp_path / "cgroup" / "memory.current").write_text(f"{2**29}\n")
    assert devices.free_memory(cpu) == 2**29 + 300  # the limit, less what is used, plus the cache it can drop
    (tmp_path / "meminfo").write_text("MemTotal: 1 kB\n")
    assert devices.free_memory(cpu) is None  # cannot tell: no refusal on a guess


class _NaNNet(torch.nn.Module):
    """Damaged weights: every output NaN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1000), float("nan")) + 0 * x.sum()


def test_a_model_whose_outputs_are_not_numbers_is_refused_in_one_sentence():
    from umask.attacks import predict
    from umask.targets import imagenet_classes

    broken = Classifier(_NaNNet(), name="broken", categories=imagenet_classes(), mean=[0.5] * 3, std=[0.5] * 3,
                        native_size=16)
    said = "The model broken gives outputs that are not numbers (NaN or infinity); its weights are damaged: use another checkpoint."
    with pytest.raises(UmaskError) as err:
        UniversalSearch(broken, small(model="broken")).run()
    assert str(err.value) == said
    image = torch.rand(3, 16, 16)
    with pytest.raises(UmaskError, match="not numbers"):
        classify_masked(broken, image, torch.ones(2, 1, 16, 16))
    with pytest.raises(UmaskError, match="not numbers"):
        predict(broken, image)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_one_value_that_is_not_a_number_is_caught(tiny, bad):
    """The check reads a sum: one NaN or infinity anywhere, of either sign, still fails it."""
    values = torch.zeros(3, 1000)
    values[2, 417] = bad
    with pytest.raises(UmaskError, match="not numbers"):
        tiny.check_outputs(values)


def test_finite_values_whose_sum_overflows_pass_the_check(tiny):
    values = torch.full((2, 1000), 3e38)  # each finite; their float32 sum is not
    assert not math.isfinite(float(values.sum()))
    assert tiny.check_outputs(values) is values
