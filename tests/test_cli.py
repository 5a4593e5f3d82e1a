import json

import pytest

from umask.cli import main
from umask.results import load_result
from umask.text import percent

from .conftest import run_cli


def test_generate_then_evaluate(tiny_registered, tmp_path, capsys):
    out_dir = tmp_path / "res"
    code, out, err = run_cli(
        capsys, "generate", "--model", "tiny", "--masks", "hstripes", "--k", "3", "--size", "16",
        "--targets", "goldfish", "volcano", "tench", "--steps", "300", "--out", str(out_dir),
    )
    assert code == 0, err
    assert "goldfish (1)" in out and "volcano (980)" in out and "success 100 % (3/3 masked copies with their target as the top-1 class)" in out
    result = load_result(out_dir)
    assert result.targets == (1, 980, 0) and result.predictions == result.targets
    # The final table: each part's target, prediction and the target's probability, as saved.
    for k, name in enumerate(("goldfish", "volcano", "tench")):
        line = next(x for x in out.splitlines() if x.split()[:1] == [str(k)])
        assert line.split()[1:] == [name, f"({result.targets[k]})", name, f"({result.targets[k]})",
                                    *percent(result.target_probs[k], 1).split(), "hit"], line

    code, out, err = run_cli(capsys, "evaluate", str(out_dir), "--format", "json", "--json", str(tmp_path / "r.json"))
    assert code == 0 and err == f"json: {tmp_path / 'r.json'}\n"  # said where it went, off the JSON on stdout
    report = json.loads(out)
    assert report["models"]["tiny"]["predictions"] == [1, 980, 0] and report["models"]["tiny"]["matches_saved"] is True
    assert json.loads((tmp_path / "r.json").read_text()) == report

    code, out, err = run_cli(capsys, "evaluate", str(out_dir))
    assert code == 0 and "goldfish 1" not in out and "hit: goldfish" in out and "success        100 %" in out
    assert out.endswith("\ntiny, fed as the result was made, repeats the saved predictions exactly.\n") and err == ""
    # A miss names the prediction and gives the target's probability, labelled as the target's.
    from umask.targets import imagenet_classes

    meta = json.loads((out_dir / "result.json").read_text())
    meta["targets"] = [2, 980, 0]
    meta["target_names"] = [imagenet_classes()[t] for t in meta["targets"]]
    meta["success_rate"] = 2 / 3  # as its predictions (1, 980, 0) say, or the result is refused as corrupt
    (out_dir / "result.json").write_text(json.dumps(meta))
    code, out, err = run_cli(capsys, "evaluate", str(out_dir))
    part0 = next(line for line in out.splitlines() if line.split()[:1] == ["0"])
    assert code == 0 and "great white shark (2)" in part0 and "miss: goldfish (target " in part0
    # A saved prediction the model does not repeat is said (a result made elsewhere, or edited).
    meta["predictions"] = [3, 980, 0]
    (out_dir / "result.json").write_text(json.dumps(meta))
    code, out, err = run_cli(capsys, "evaluate", str(out_dir))
    assert code == 0 and "repeats the saved predictions" not in out
    assert err == "umask: warning: tiny does not repeat the predictions saved in result.json (part 0 differs).\n"


def test_evaluate_leaves_out_a_model_that_cannot_load_only_when_asked(tiny_registered, tmp_path, capsys):
    from umask.models import weights_available

    if weights_available("efficientnet_lite1"):
        pytest.skip("efficientnet_lite1's package is installed here; the test needs a model that cannot load")
    out_dir = tmp_path / "res"
    assert run_cli(capsys, "generate", "--model", "tiny", "--masks", "hstripes", "--k", "2", "--size", "16",
                   "--steps", "5", "--out", str(out_dir))[0] == 0
    code, out, err = run_cli(capsys, "evaluate", str(out_dir), "--models", "tiny", "efficientnet_lite1")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("umask: error: efficientnet_lite1 needs the packages")
    assert err.endswith("; to evaluate the other models without efficientnet_lite1, add --skip-missing.\n")
    code, out, err = run_cli(capsys, "evaluate", str(out_dir), "--models", "tiny", "efficientnet_lite1", "--skip-missing",
                             "--format", "json")
    report = json.loads(out)
    assert code == 0 and list(report["models"]) == ["tiny"] and list(report["unavailable"]) == ["efficientnet_lite1"]
    assert err.startswith("umask: efficientnet_lite1 left out (--skip-missing): efficientnet_lite1 needs the packages")
    # Nothing that can load: one sentence, not an empty table.
    code, out, err = run_cli(capsys, "evaluate", str(out_dir), "--models", "efficientnet_lite1", "--skip-missing")
    assert code == 2 and err.startswith("umask: error: No model can load here (efficientnet_lite1: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "flags,expected",
    [
        ([], {"balance_masks": True, "streak_scale": 10.0, "optimizer": "adam", "lr": 0.04}),
        (["--no-balance"], {"balance_masks": False, "streak_scale": 0.0}),  # streaks act through balancing
        (["--streak-scale", "5"], {"balance_masks": True, "streak_scale": 5.0}),
        (["--preset", "seed"], {"balance_masks": False, "streak_scale": 0.0, "optimizer": "sgd", "lr": 0.1}),
        # Every other knob of generate lands in the config it saves.
        (["--masks", "random", "--layout-seed", "5", "--mode", "keep", "--fill", "0.5", "--optimizer", "sgd", "--lr", "0.3",
          "--seed", "3", "--no-stop"],
         {"mask_family": "random", "layout_seed": 5, "mask_mode": "keep", "fill": 0.5, "optimizer": "sgd", "lr": 0.3,
          "seed": 3, "stop_at_success": False, "steps": 3, "k": 2, "size": 16}),
        (["--optimizer", "adam", "--adam-beta2", "0.9", "--fill", "mean", "--masks", "vstripes", "--margin", "0.2",
          "--targets", "goldfish", "volcano"],
         {"optimizer": "adam", "adam_beta2": 0.9, "fill": "mean", "mask_family": "vstripes", "mask_mode": "hide",
          "stop_margin": 0.2, "stop_at_success": True, "targets": [1, 980]}),
    ],
)
def test_optimiser_flags_reach_the_saved_config(tiny_registered, tmp_path, capsys, flags, expected):
    out_dir = tmp_path / "res"
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--k", "2", "--size", "16", "--steps", "3",
                           *flags, "--out", str(out_dir))
    assert code == 0, err
    saved = json.loads((out_dir / "result.json").read_text())["config"]
    assert {key: saved[key] for key in expected} == expected


def test_models_and_classes(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "efficientnet_lite0" in out and "resnet50" in out and "98 MB" in out
    lite0 = next(line for line in out.splitlines() if line.startswith("efficientnet_lite0 "))
    assert lite0.split()[1:4] == ["pip", "package", "yes"]
    code, out, _ = run_cli(capsys, "classes", "volc")
    assert code == 0 and "980" in out and "volcano" in out
    assert run_cli(capsys, "classes", "zzzz") == (1, "", "No ImageNet class contains 'zzzz'.\n")
    assert run_cli(capsys, "classes", "goldfsh") == (1, "", "No ImageNet class contains 'goldfsh'. Close matches: 'goldfish' (1), 'goldfinch' (11).\n")
    code, out, _ = run_cli(capsys, "classes", "517")
    assert code == 0 and out.splitlines()[2].split() == ["517", "crane"]
    assert run_cli(capsys, "classes", "1000") == (1, "", "No ImageNet class has index 1000; they run from 0 to 999.\n")
    assert run_cli(capsys, "classes", "-1") == (1, "", "No ImageNet class has index -1; they run from 0 to 999.\n")
    code, out, _ = run_cli(capsys, "classes", "tiger", "cat")  # several words, no quotes: one name
    assert code == 0 and out.splitlines()[2:] == ["282    tiger cat"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--k", "1"], "K = 1 is too small"),
        (["--masks", "hstripes", "--k", "65"], "the most is 64"),
        (["--model", "nosuchnet"], "Unknown model 'nosuchnet'"),
        (["--targets", "goldfsh", "volcano"], "Unknown ImageNet class 'goldfsh'"),
        (["--size", "2", "--k", "2"], "too small"),
        (["--fill", "grey"], "Fill 'grey' is not understood"),
        (["--streak-scale", "-1"], "Streak scale -1.0 must be 0 (off) or a number of steps, 1 or more."),
        (["--streak-scale", "1e-38"], "Streak scale 1e-38 must be 0 (off) or a number of steps, 1 or more."),
        (["--k", "2", "--lr", "1e39"], "Learning rate 1e+39 is more than 10000; give one up to that (the study's is 0.1)."),
        (["--masks", "custom", "--k", "2", "--layout", "/nonexistent.png"], "does not exist"),
        (["--masks", "hstripes", "--k", "2", "--layout", "/nonexistent.png"], "goes with the 'custom' mask family"),
        (["--k", "2", "--no-balance", "--streak-scale", "5"], "--streak-scale acts through gradient balancing, which is off here"),
        (["--k", "2", "--preset", "seed", "--streak-scale", "5"], "--streak-scale acts through gradient balancing"),
        (["--k", "2", "--resize", "0"], "Resize '0' is not allowed; give a side of 8 to 1024 pixels or 'native' (or leave it out)."),
        (["--k", "2", "--resize", "100000"], "Resize '100000' is not allowed; give a side of 8 to 1024 pixels"),
        (["--k", "2", "--size", "100000"], "Image size 100000 is too large; use at most 1024 pixels"),
        (["--k", "2", "--seed", "99999999999999999999"], "Seed 99999999999999999999 is not allowed; give a whole number from 0 to 2^63 - 1."),
        (["--k", "2", "--lr", "inf"], "Learning rate inf must be a positive, finite number."),
        (["--k", "2", "--streak-scale", "inf"], "Streak scale inf must be 0 (off)"),
        (["--k", "2", "--device", "tpu"], "Unknown device 'tpu'"),
        (["--k", "2", "--device", "cuda:x"], "Unknown device 'cuda:x'"),
        (["--k", "2", "--device", ""], "Unknown device ''; use cpu, cuda, cuda:N or auto."),
        (["--k", "2", "--layout-seed", "3"], "--layout-seed seeds the random layout; the 'grid' layout has none"),
        (["--k", "2", "--preset", "seed", "--adam-beta2", "0.5"], "--adam-beta2 sets Adam's second-moment decay, but the optimiser here is sgd"),
        (["--targets", "-1", "5"], "Class index -1 is out of range; ImageNet-1K indices run from 0 to 999."),
        (["--k", "2", "--model", "="], "Model '=' is not a checkpoint spec: ARCH=PATH needs both the architecture and the checkpoint's path"),
        (["--targets", "goldfish", "volcano", "--seed", "5"], "with --targets and the fast preset (which starts from grey) it "
                                                             "changes nothing: drop --seed, or add --preset seed."),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_registered, tmp_path, capsys, argv, message):
    argv = [a.replace("__tiny__", "tiny") for a in argv]
    if "--model" not in argv:
        argv = ["--model", "tiny", *argv]
    if "--size" not in argv:
        argv += ["--size", "16"] if "65" not in argv else ["--size", "64"]
    code, out, err = run_cli(capsys, "generate", *argv, "--steps", "2", "--out", str(tmp_path / "res"))
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "res").exists()


def test_evaluate_a_folder_that_is_no_result(tmp_path, capsys):
    from umask.optimise import UniversalSearch
    from umask.results import save_result

    from .conftest import small, tiny_classifier

    (tmp_path / "bad").mkdir()
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "bad"))
    assert code == 2 and err == (f"umask: error: '{tmp_path / 'bad'}' holds no result (none of universal.png, parts.png, "
                                 "result.json); give a result folder, as python -m umask generate --out writes it.\n")
    (tmp_path / "bad" / "result.json").write_text("{}")
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "bad"))
    assert code == 2 and "is incomplete: it has no universal.png" in err
    # A sweep folder: one of its runs is what was meant.
    run = tmp_path / "sweep" / "runs" / "tiny" / "hstripes-hide" / "fast-300" / "k3-seed0"
    save_result(UniversalSearch(tiny_classifier(), small(steps=3)).run(), run)
    code, out, err = run_cli(capsys, "geometry", str(tmp_path / "sweep"))
    assert code == 2 and err == (f"umask: error: '{tmp_path / 'sweep'}' is a sweep folder, not one result; give one of the "
                                 f"run folders under {tmp_path / 'sweep' / 'runs'}, e.g. {run}.\n")


def test_existing_foreign_output_is_refused_before_running(tiny_registered, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--out", str(tmp_path))
    assert code == 2 and "already holds other files" in err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_an_earlier_result_is_replaced_only_with_overwrite(tiny_registered, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "3", "--out", str(out)]
    assert run_cli(capsys, *args)[0] == 0
    before = (out / "result.json").read_text()
    code, _, err = run_cli(capsys, *args[:-4], "--seed", "1", *args[-4:])
    assert (code, err) == (2, f"umask: error: '{out}' already holds a result; give a new --out, or add --overwrite to replace it.\n")
    assert (out / "result.json").read_text() == before
    assert run_cli(capsys, *args, "--seed", "1", "--overwrite")[0] == 0
    assert json.loads((out / "result.json").read_text())["config"]["seed"] == 1
    # Through a folder not made yet and back ('..'): the OS reads it as the same
    # folder once that one is made, so it is refused as the same folder, and
    # the same goes for every command's output.
    after = (out / "result.json").read_text()
    detour = f"{tmp_path}/new/../run"
    code, _, err = run_cli(capsys, *args[:-1], detour)
    assert (code, err) == (2, f"umask: error: '{out}' already holds a result; give a new --out, or add --overwrite to replace it.\n")
    assert (out / "result.json").read_text() == after and not (tmp_path / "new").exists()
    (tmp_path / "adv.png").write_bytes(b"mine")
    code, _, err = run_cli(capsys, "fgsm", str(out / "universal.png"), "--model", "tiny", "--eps", "0.01",
                           "--out", f"{tmp_path}/new/../adv.png")
    assert code == 2 and err == f"umask: error: '{tmp_path / 'adv.png'}' already exists; give another path, or add --overwrite to replace it.\n"
    assert (tmp_path / "adv.png").read_bytes() == b"mine"


@pytest.mark.parametrize("command, option, dest", [
    ("generate", "--out", "out"), ("fgsm", "--out", "out"), ("sweep", "--out", "out"), ("bench", "--out", "out"),
    ("bench", "--json", "json"), ("evaluate", "--json", "json_path"), ("geometry", "--html", "html"),
])
def test_every_output_option_reads_a_detour_as_the_os_will(tmp_path, command, option, dest):
    from umask.cli import build_parser

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    inputs = {"fgsm": ["x.png"], "evaluate": ["res"], "geometry": ["res"]}.get(command, [])

    def parsed(path: str) -> str:
        argv = [command, *inputs, option, path]
        return str(getattr(build_parser(argv).parse_args(argv), dest))

    assert parsed(f"{tmp_path}/new/../first") == str(tmp_path / "first")
    # The folders are resolved, links and all; the last name is what is written (a link
    # there is the link, which the writers refuse, not the folder it points to), with its "/".
    assert parsed(f"{tmp_path}/link/../x/new/../link") == str(tmp_path / "x" / "link")
    kept = "" if dest == "json" else "/"  # bench's --json is a Path, which drops it
    assert parsed(f"{tmp_path}/new/../first/") == f"{tmp_path / 'first'}{kept}"
    assert parsed("plain/name") == "plain/name"  # no detour: as typed, as messages echo it


def interrupt_after(monkeypatch, steps: int) -> None:
    """Make generate's search raise KeyboardInterrupt (Ctrl-C) once ``steps`` steps are done."""
    from umask.cli import generate
    from umask.optimise import UniversalSearch

    class Interrupted(UniversalSearch):
        def __iter__(self):
            reports = super().__iter__()
            for _ in range(steps):
                yield next(reports)
            raise KeyboardInterrupt

    monkeypatch.setattr(generate, "UniversalSearch", Interrupted)


def test_sigterm_saves_the_best_image_as_ctrl_c_does(tiny_registered, tmp_path, capsys, monkeypatch):
    import os
    import signal

    from umask.cli import generate
    from umask.optimise import UniversalSearch

    class Killed(UniversalSearch):  # kill, timeout or a cancelled CI job after three steps
        def __iter__(self):
            for n, report in enumerate(super().__iter__()):
                yield report
                if n == 2:
                    os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(generate, "UniversalSearch", Killed)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "50",
                              "--no-stop", "--out", out)
    assert code == 143 and "(interrupted; best image so far); saved to" in stdout
    assert load_result(out).steps == 3
    assert signal.getsignal(signal.SIGTERM) is before  # the CLI's handler is gone once it returns


@pytest.mark.parametrize("error", ["gpu", "cpu", "other", "umask"])
def test_a_step_that_runs_out_of_memory_is_one_line(tiny_registered, tmp_path, capsys, monkeypatch, error):
    import torch

    from umask.cli import generate
    from umask.errors import UmaskError
    from umask.optimise import UniversalSearch

    raised = {"gpu": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
              "cpu": RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                                  "you tried to allocate 2147483648 bytes."),
              "other": RuntimeError("a bug in umask"),
              # umask's own sentence, which may quote the allocator, is said as it is
              "umask": UmaskError("Checkpoint 'big.pth' could not be read: can't allocate memory; free some.")}[error]

    class Hungry(UniversalSearch):  # the memory check's estimate was short: the third step outgrows it
        def __iter__(self):
            for n, report in enumerate(super().__iter__()):
                if n == 2:
                    raise raised
                yield report

    monkeypatch.setattr(generate, "UniversalSearch", Hungry)
    if error == "other":  # not a user's problem: a bug, with its traceback
        with pytest.raises(RuntimeError, match="a bug in umask"):
            run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--out", tmp_path / "run")
        return
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--out", tmp_path / "run")
    assert code == 2 and "Traceback" not in err
    if error == "umask":
        assert err.splitlines()[-1] == f"umask: error: {raised}"
        return
    assert err.splitlines()[-1] == ("umask: error: out of memory while it ran (what was saved before is kept); "
                                    "use a smaller image or fewer masks (or another device).")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_keeps_the_better_of_the_earlier_and_the_interrupted_result(tiny_registered, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["generate", "--model", "tiny", "--size", "16", "--k", "2", "--targets", "0", "1", "--out", out, "--overwrite"]
    assert run_cli(capsys, *args, "--steps", "300")[0] == 0
    finished = (out / "result.json").read_text()
    assert json.loads(finished)["success_rate"] == 1.0
    interrupt_after(monkeypatch, 0)
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 130 and "interrupted before the first step; nothing saved" in stdout
    assert (out / "result.json").read_text() == finished
    interrupt_after(monkeypatch, 1)
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 130 and "interrupted after 1 step at 0 %; kept the earlier result in" in stdout
    assert (out / "result.json").read_text() == finished
    # Other targets are another experiment: --overwrite asked for it, so it is saved.
    code, stdout, _ = run_cli(capsys, *args[:-4], "2", *args[-3:])
    assert code == 130 and "(interrupted; best image so far); saved to" in stdout
    assert load_result(out).targets == (0, 2)
    fresh = tmp_path / "fresh"  # nothing to keep: the best image so far is saved
    code, stdout, _ = run_cli(capsys, *args[:-3], "--out", fresh)
    assert code == 130 and "(interrupted; best image so far); saved to" in stdout
    assert load_result(fresh).steps == 1
    # Another part layout (--layout-seed) is another experiment too.
    monkeypatch.undo()
    layout_args = ["generate", "--model", "tiny", "--size", "16", "--k", "2", "--targets", "0", "1", "--masks", "random",
                   "--out", tmp_path / "layouts", "--overwrite"]
    assert run_cli(capsys, *layout_args, "--layout-seed", "1", "--steps", "300")[0] == 0
    assert load_result(tmp_path / "layouts").success_rate == 1.0
    interrupt_after(monkeypatch, 1)
    code, stdout, _ = run_cli(capsys, *layout_args, "--layout-seed", "2")
    assert code == 130 and "(interrupted; best image so far); saved to" in stdout
    assert load_result(tmp_path / "layouts").config["layout_seed"] == 2


def test_no_command_writes_over_the_files_of_a_saved_result(tiny_registered, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "2", "--out", out)[0] == 0
    saved = {p: p.read_bytes() for p in first.iterdir()}
    attempts = [
        ["fgsm", second / "universal.png", "--model", "tiny", "--out", first / "universal.png"],
        ["evaluate", second, "--models", "tiny", "--json", first / "result.json"],
    ]
    for argv in attempts:
        code, _, err = run_cli(capsys, *argv)
        name = argv[-1].name
        assert (code, err) == (2, f"umask: error: '{first / name}' is a file of the result in '{first}'; write to another path.\n")
    # geometry writes only .html, which no result file is.
    code, _, err = run_cli(capsys, "geometry", second, "--slice", "0", "1", "--html", first / "parts.png")
    assert code == 2 and err.endswith("must end in .html; the slice map is a web page.\n")
    assert {p: p.read_bytes() for p in first.iterdir()} == saved


def test_a_result_saved_into_out_while_this_run_went_on_is_kept(tiny_registered, tmp_path, capsys, monkeypatch):
    from umask.cli import generate, main
    from umask.optimise import UniversalSearch

    out = tmp_path / "run"
    other = ["generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "2", "--seed", "7", "--out", str(out)]

    class Raced(UniversalSearch):  # a second generate into the same --out finishes during this run
        def __iter__(self):
            monkeypatch.setattr(generate, "UniversalSearch", UniversalSearch)
            assert main(other) == 0
            yield from super().__iter__()

    monkeypatch.setattr(generate, "UniversalSearch", Raced)
    code, stdout, _ = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "2", "--out", out)
    assert code == 0 and f"'{out}' received another result while this run went on; this one goes to {out}-2/ instead" in stdout
    assert load_result(out).config["seed"] == 7 and load_result(tmp_path / "run-2").config["seed"] == 0


def test_a_file_path_ending_in_a_slash_is_refused(tiny_registered, tmp_path, capsys):
    assert run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "1", "--out", tmp_path / "r")[0] == 0
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "r", "--models", "tiny", "--json", f"{tmp_path / 'j'}/")
    assert (code, err) == (2, f"umask: error: '{tmp_path / 'j'}/' ends in '/', so it names a folder; give the path of a file.\n")
    assert not (tmp_path / "j").exists()


def test_verbose_goes_before_or_after_the_command(capsys):
    assert run_cli(capsys, "classes", "-v", "goldf")[0] == 0
    assert run_cli(capsys, "-v", "classes", "goldf")[0] == 0


def test_an_output_nothing_can_be_written_in_is_refused_before_running(tiny_registered, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--out", "/proc/umask-run")
    # /proc's permission bits let root write; the probe file finds out nobody can.
    assert code == 2 and "Cannot write '/proc/umask-run': nothing can be written in '/proc'" in err and err.count("\n") == 1
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--out", ".")
    assert code == 2 and "'.' is the current folder or holds it" in err and list(tmp_path.iterdir()) == []
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--out", "")
    assert (code, err) == (2, "umask: error: --out is empty; give the folder to write the result to, e.g. --out runs/first.\n")
    code, _, err = run_cli(capsys, "sweep", "--models", "tiny", "--out", "")
    assert (code, err) == (2, "umask: error: --out is empty; give the sweep folder, e.g. --out sweeps/first.\n")


def test_an_output_under_a_file_is_refused_before_running(tiny_registered, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "500",
                           "--out", str(tmp_path / "notes.txt" / "res"))
    assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err
    assert "step" not in err  # refused before the run, not after it
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    # A misspelt model is said before the output's trouble: mending --out first would be for nothing.
    code, out, err = run_cli(capsys, "generate", "--model", "tinny", "--size", "16", "--k", "2",
                             "--out", str(tmp_path / "notes.txt" / "res"))
    assert code == 2 and err.startswith("umask: error: Unknown model 'tinny'"), err


def test_custom_layout_without_k_or_size_takes_them_from_the_map(tiny_registered, tmp_path, capsys):
    from umask.masks import layout, save_layout_png

    save_layout_png(layout("vstripes", 3, 16), tmp_path / "map.png")
    code, out, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--masks", "custom",
                             "--layout", tmp_path / "map.png", "--steps", "2", "--out", tmp_path / "res")
    assert code == 0, err
    assert json.loads((tmp_path / "res" / "result.json").read_text())["k"] == 3
    # Without --size: the map's own side (was 64, and "the part map is 16x16 but the image size is 64x64").
    code, out, err = run_cli(capsys, "generate", "--model", "tiny", "--masks", "custom",
                             "--layout", tmp_path / "map.png", "--steps", "2", "--out", tmp_path / "res2")
    assert code == 0, err
    saved = json.loads((tmp_path / "res2" / "result.json").read_text())
    assert (saved["k"], saved["size"]) == (3, 16)
    # A --size that disagrees with the map is still said, not overridden.
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--masks", "custom", "--size", "32",
                           "--layout", tmp_path / "map.png", "--steps", "2", "--out", tmp_path / "res3")
    assert code == 2 and "is 16x16 but the image size is 32x32; they must match." in err
    # A map no image can match: said of the map, from its header, not of a --size never given.
    from PIL import Image

    for name, (w, h), said in (("wide.png", (20, 16), "is 20x16; a part map is square, as the image is."),
                               ("tiny.png", (4, 4), "is 4x4; umask's images are 8 to 1024 pixels a side."),
                               ("huge.png", (2048, 2048), "is 2048x2048; umask's images are 8 to 1024 pixels a side.")):
        Image.new("L", (w, h), 1).save(tmp_path / name)
        code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--masks", "custom",
                               "--layout", tmp_path / name, "--steps", "2", "--out", tmp_path / "res4")
        assert code == 2 and err.strip() == f"umask: error: Part map '{tmp_path / name}' {said}", err


def test_evaluate_checks_the_json_path_and_feeds_each_model_a_size_it_takes(tiny_registered, tiny32_registered, tmp_path, capsys):
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "2",
                           "--out", tmp_path / "res")
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--json", tmp_path / "no" / "such" / "dir" / "r.json")
    assert code == 0  # missing folders are made
    (tmp_path / "notes.json").write_text("mine")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--json", tmp_path / "notes.json")
    assert code == 2 and err.endswith("already exists; give another path, or add --overwrite to replace it.\n")
    assert (tmp_path / "notes.json").read_text() == "mine"
    code, out, _ = run_cli(capsys, "evaluate", tmp_path / "res", "--json", tmp_path / "notes.json", "--overwrite")
    assert code == 0 and out.endswith(f"\njson: {tmp_path / 'notes.json'}\n")
    assert json.loads((tmp_path / "notes.json").read_text())["k"] == 2
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--overwrite")
    assert (code, err) == (2, "umask: error: --overwrite replaces the file at --json, and there is no --json here; "
                              "drop --overwrite, or add --json FILE.\n")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--json", "")
    assert (code, err) == (2, "umask: error: An empty path was given; give the path of a file.\n")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--json", tmp_path)
    assert code == 2 and "is a folder; give a file path" in err
    saved = (tmp_path / "res" / "result.json").read_text()
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--json", tmp_path / "res" / "result.json")
    assert code == 2 and "which this command reads; write to another path" in err
    assert (tmp_path / "res" / "result.json").read_text() == saved  # the result it reads is untouched
    # A 16-pixel result on a model that needs 32 (trained at 48): fed at its
    # native side, and the table says so; the image's own model sees 16.
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "res", "--models", "tiny", "tiny32", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["models"]["tiny"]["fed_at"] == 16 and report["models"]["tiny32"]["fed_at"] == 48
    assert report["models"]["tiny"]["predictions"] == list(load_result(tmp_path / "res").predictions)
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "res", "--models", "tiny", "tiny32")
    header = out.splitlines()[0].split()
    assert code == 0 and header == ["part", "target", "tiny", "tiny32", "(at", "48", "px)"]
    # --resize feeds every model one side; one that cannot take it: one sentence, not a torch error.
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--models", "tiny32", "--resize", "20")
    assert code == 2 and err.strip() == ("umask: error: A resize to 20 pixels is too small for tiny32, which needs at least "
                                         "32 pixels a side; use --resize native (or a resize to 32 or more).")
    code, _, err = run_cli(capsys, "generate", "--model", "tiny32", "--k", "2", "--size", "16", "--steps", "1",
                           "--out", tmp_path / "small")
    assert code == 2 and err.strip().endswith("needs at least 32 pixels a side; use --resize native (or --size 32 or more).")
    assert not (tmp_path / "small").exists()
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "res", "--models", "tiny", "--resize", "native",
                             "--format", "json")
    assert code == 0 and json.loads(out)["models"]["tiny"]["fed_at"] == 16  # tiny's native side
    assert json.loads(out)["models"]["tiny"]["matches_saved"] is True  # the size it was made at: compared
    # The image's own model fed at another size: not compared with the saved predictions, and said so.
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "res", "--resize", "24", "--format", "json")
    entry = json.loads(out)["models"]["tiny"]
    assert code == 0 and entry["fed_at"] == 24 and entry["made_at"] == 16 and "matches_saved" not in entry
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "res", "--resize", "24")
    assert out.rstrip().endswith("tiny saw the image at 24 px, not at the 16 px it was made at, so its predictions "
                                 "are not compared with the saved ones; without --resize they are.")
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "res", "--resize", "big")
    assert code == 2 and "Resize 'big' is not allowed" in err


def test_geometry_prints_the_norms_and_the_slice_as_json_or_a_table(tiny_registered, tmp_path, capsys):
    from umask.attacks import predict
    from umask.models import load_model

    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--masks", "hstripes", "--k", "4", "--size", "16",
                           "--steps", "5", "--out", tmp_path / "res")
    assert code == 0, err
    html = tmp_path / "maps" / "slice.html"
    code, out, err = run_cli(capsys, "geometry", tmp_path / "res", "--format", "json", "--slice", "0", "2",
                             "--resolution", "5", "--html", html)
    assert code == 0, err
    report = json.loads(out)  # nothing but JSON on stdout
    assert [row["k"] for row in report["per_mask"]] == [0, 1, 2, 3]
    result = load_result(tmp_path / "res")
    centre = int(predict(load_model("tiny"), result.image).argmax())
    assert report["slice"]["copies"] == [0, 2] and report["slice"]["resolution"] == 5
    assert report["slice"]["centre_class"] == centre and centre in report["slice"]["classes"]
    assert report["slice"]["html"] == str(html) and "plotly" in html.read_text()
    first_map = html.read_text()
    code, out, err = run_cli(capsys, "geometry", tmp_path / "res", "--slice", "0", "2", "--resolution", "5", "--html", html)
    assert (code, err) == (2, f"umask: error: '{html}' already exists; give another path, or add --overwrite to replace it.\n")
    assert html.read_text() == first_map and out == ""  # refused before the slice is computed
    code, out, err = run_cli(capsys, "geometry", tmp_path / "res", "--slice", "0", "2", "--resolution", "5", "--html", html,
                             "--overwrite")
    assert code == 0 and "slice through x, m0 x, m2 x" in out and f"({centre}); map: {html}" in out
    # Without --html the map goes beside the folder, named for its copies: a second slice keeps the first.
    for i, j in ((0, 1), (2, 3)):
        assert run_cli(capsys, "geometry", tmp_path / "res", "--slice", str(i), str(j), "--resolution", "3")[0] == 0
    assert (tmp_path / "res-slice-0-1.html").is_file() and (tmp_path / "res-slice-2-3.html").is_file()
    # The result as the dashboard's zip: read as the folder is, its map named without ".zip".
    from umask.results import result_to_zip

    (tmp_path / "dash.zip").write_bytes(result_to_zip(load_result(tmp_path / "res")))
    code, out, err = run_cli(capsys, "geometry", tmp_path / "dash.zip", "--slice", "0", "1", "--resolution", "3")
    assert code == 0 and (tmp_path / "dash-slice-0-1.html").is_file(), err
    (tmp_path / "maps.html").mkdir()
    code, _, err = run_cli(capsys, "geometry", tmp_path / "res", "--slice", "0", "1", "--html", tmp_path / "maps.html")
    assert code == 2 and "is a folder; give a file path" in err
    code, _, err = run_cli(capsys, "geometry", tmp_path / "res", "--slice", "0", "1", "--html", tmp_path / "res" / "map.html")
    assert code == 2 and "lies inside" in err and load_result(tmp_path / "res").k == 4
    code, _, err = run_cli(capsys, "geometry", tmp_path / "res", "--html", tmp_path / "map.html")
    assert code == 2 and "only --slice I J computes" in err and not (tmp_path / "map.html").exists()
    code, _, err = run_cli(capsys, "geometry", tmp_path / "res", "--resolution", "5")  # an option with no effect is said
    assert err == ("umask: error: --resolution is for the decision-slice map, which only --slice I J computes; "
                   "add --slice, or drop --resolution.\n")
    code, _, err = run_cli(capsys, "geometry", tmp_path / "res", "--slice", "0", "1", "--html", tmp_path / "map.png")
    assert code == 2 and err.endswith("must end in .html; the slice map is a web page.\n") and not (tmp_path / "map.png").exists()
    for resolution in ("1", "100000"):  # refused before the model loads (100000 a side: ~75 GB, hours)
        code, _, err = run_cli(capsys, "geometry", tmp_path / "res", "--slice", "0", "1", "--resolution", resolution)
        assert code == 2 and err.strip() == f"umask: error: Slice resolution {resolution} is not allowed; use 3 to 301 points a side."


def test_a_terminal_that_cannot_show_a_character_gets_a_question_mark_not_a_traceback(tiny, tmp_path):
    import os
    import subprocess
    import sys

    from umask.optimise import UniversalSearch
    from umask.results import save_result

    from .conftest import small

    save_result(UniversalSearch(tiny, small(steps=2)).run(), tmp_path / "res")
    env = dict(os.environ, PYTHONIOENCODING="latin-1")  # the claim's table says "L∞"
    done = subprocess.run([sys.executable, "-m", "umask", "geometry", str(tmp_path / "res")], capture_output=True,
                          env=env, timeout=120)
    assert done.returncode == 0 and b"Traceback" not in done.stderr and b"L? relative" in done.stdout


def test_progress_off_a_terminal_writes_plain_lines_with_rate_and_eta(tiny_registered, tmp_path, capsys, monkeypatch):
    from umask.cli import output

    monkeypatch.setattr(output, "LOG_EVERY_S", 0.0)  # a line per redraw, not one per 30 s
    code, _, err = run_cli(capsys, "generate", "--model", "tiny", "--k", "2", "--size", "16", "--steps", "4",
                           "--no-stop", "--out", tmp_path / "res")
    assert code == 0 and "\r" not in err  # capsys is no terminal: a log file reads as lines
    lines = err.splitlines()
    assert lines[0] == "tiny: grid K=2, hide, 16 x 16, up to 4 steps"
    assert lines[1].startswith("grid K=2:   0%") and "0/4" in lines[1]
    assert "4/4" in lines[-1] and "step/s" in lines[-1] and "success=" in lines[-1] and "best=" in lines[-1]


def test_a_progress_line_cut_to_80_columns_keeps_the_success_rate():
    from tqdm import tqdm

    from umask.cli.output import BAR_FORMAT

    line = tqdm.format_meter(49, 5000, 4.4, ncols=80, prefix="hstripes K=10", unit="step", rate=11.16,
                             postfix="success=90 %, best=100 %", bar_format=BAR_FORMAT)
    assert len(line) <= 80 and "success=90 %, best=100 %" in line and "07:23" in line  # and the ETA


def test_off_a_terminal_a_progress_line_comes_at_most_every_log_every_s(capsys):
    from umask.cli import output

    with output.progress(10, "x") as bar:  # tqdm's monitor would otherwise redraw every 10 s
        assert bar.mininterval == bar.maxinterval == output.LOG_EVERY_S == 30.0


def test_verbose_generate_logs_the_load_the_search_and_the_save(tiny_registered, tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="umask")
    assert run_cli(capsys, "-v", "generate", "--model", "tiny", "--size", "16", "--k", "2", "--steps", "2",
                   "--out", tmp_path / "run")[0] == 0
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("loaded tiny in ") for m in said)
    assert any(m.startswith("a step needs about ") for m in said)
    assert any(m.startswith("search: tiny K=2 grid/hide on 16x16, adam") for m in said)
    assert f"saved {tmp_path / 'run'}: tiny K=2, " in " | ".join(said)


@pytest.mark.parametrize("argv,said", [
    (["generate", "--k", "2.5"], "umask: error: generate: argument --k: invalid int value: '2.5'; see python -m umask generate --help.\n"),
    (["geometry", "r", "--slice", "0.5", "1"], "umask: error: geometry: argument --slice: invalid int value: '0.5'; see python -m umask geometry --help.\n"),
    (["sweep", "--models"], "umask: error: sweep: argument --models: expected at least one argument; see python -m umask sweep --help.\n"),
    # Reported by the top-level parser, but explained by the command's help.
    (["generate", "--K", "2", "--out", "r"], "umask: error: generate: unrecognized arguments: --K 2; see python -m umask generate --help.\n"),
    (["-v", "fgsm", "cat.jpg", "--out", "a.png", "--target", "goldfish", "tench"],
     "umask: error: fgsm: unrecognized arguments: tench; see python -m umask fgsm --help.\n"),
])
def test_a_mistyped_option_is_one_line(capsys, argv, said):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and capsys.readouterr().err == said


def test_paths_the_file_system_refuses_are_one_line_before_any_run(tiny_registered, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "dangling").symlink_to("/nonexistent/target")
    run = ["generate", "--model", "tiny", "--masks", "hstripes", "--k", "2", "--size", "16", "--steps", "5", "--out"]
    for out, said in (("a" * 300, "File name too long"), ("loop1", "point at each other in a loop"),
                      ("dangling", "'dangling' is a symbolic link to '/nonexistent/target', which does not exist")):
        code, stdout, err = run_cli(capsys, *run, out)
        assert code == 2 and err.count("\n") == 1 and err.startswith("umask: error: ") and said in err, err
    for out in ("loop1", "a" * 300):
        code, stdout, err = run_cli(capsys, "evaluate", out)
        assert code == 2 and err.count("\n") == 1 and err.startswith("umask: error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "loop1", "loop2"]  # nothing written


def test_options_that_would_do_nothing_are_refused(tiny_registered, tmp_path, capsys):
    out_dir = tmp_path / "res"
    run = ["generate", "--model", "tiny", "--masks", "hstripes", "--k", "2", "--size", "16", "--steps", "5"]
    code, _, err = run_cli(capsys, *run, "--no-stop", "--margin", "0.2", "--out", out_dir)
    assert code == 2 and err == ("umask: error: --margin sets when a run stops at 100 %, and --no-stop runs every step; "
                                 "drop one of them.\n") and not out_dir.exists()
    assert run_cli(capsys, *run, "--out", out_dir)[0] == 0
    code, _, err = run_cli(capsys, "geometry", out_dir, "--device", "cuda")
    assert code == 2 and err == ("umask: error: --device is for the decision-slice map, which only --slice I J computes; "
                                 "add --slice, or drop --device.\n")
    # A GPU this machine lacks is said before the norm tables are printed, not after them.
    code, out, err = run_cli(capsys, "geometry", out_dir, "--slice", "0", "1", "--device", "cuda:7")
    assert code == 2 and out == "" and err.startswith("umask: error: ") and "cuda:7" in err


def test_geometry_json_of_a_black_image_is_standard_json(tiny_registered, tmp_path, capsys):
    """An all-black image has no relative distances (0 / 0): null in the JSON, which other readers accept, not NaN."""
    import dataclasses

    import torch

    from umask.optimise import UniversalSearch
    from umask.results import save_result

    from .conftest import small, tiny_classifier

    result = UniversalSearch(tiny_classifier(), small(steps=2)).run()
    save_result(dataclasses.replace(result, image=torch.zeros_like(result.image)), tmp_path / "black")
    code, out, err = run_cli(capsys, "geometry", str(tmp_path / "black"), "--format", "json")
    assert code == 0, err
    payload = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert payload["summary"]["max_rel_l2"] is None and payload["summary"]["max_abs_l2"] == 0.0


@pytest.mark.real
@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_a_closed_stdout_or_stderr_still_runs_and_saves(tmp_path, closed):
    """`python -m umask generate ... >&-`: Python has None for the closed stream; that was a traceback, or (stderr) nothing at all."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "umask", "generate", "--k", "2", "--steps", "2", "--no-stop", "--out", str(out)],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.close(closed))
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert load_result(out).steps == 2
