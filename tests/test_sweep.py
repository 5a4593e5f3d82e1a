import csv
import json
import math
import re
import shutil

import pytest

from umask.cli import main
from umask.errors import UmaskError
from umask.report import TOY_WIDTH
from umask.results import load_result
from umask.geometry import result_geometry
from umask.text import count
from umask.sweep import (COLUMNS, CSV_FILE, OLD_COLUMNS, SweepHooks, SweepPlan, read_rows, reconcile, run_sweep, study_plan,
                         typed_rows)


TINY = ["--models", "tiny", "--size", "16", "--steps", "3", "--slice-resolution", "5"]


def plan(**kw):
    values = dict(models=("tiny",), families=("grid", "hstripes"), ks=(2, 3), steps=3, size=16)
    return SweepPlan(**(values | kw))


def rows_without_seconds(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def test_tiny_sweep_writes_rows_folders_and_report(tiny_registered, tmp_path, capsys):
    out = tmp_path / "sw"
    code = main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = read_rows(out / CSV_FILE)
    assert [(r["model"], r["mask_family"], r["mode"], r["k"], r["seed"], r["preset"], r["max_steps"]) for r in rows] == [
        ("tiny", "hstripes", "hide", "2", "0", "seed", "3"),
        ("tiny", "hstripes", "hide", "3", "0", "seed", "3"),
    ]
    for row in rows:
        result = load_result(out / row["folder"])
        assert result.k == int(row["k"]) and result.steps == int(row["steps"]) == 3
        assert float(row["success_rate"]) == pytest.approx(result.success_rate, abs=1e-6)
        # Geometry of a 16 px image under K stripes: L0 of the worst stripe = its rows / 16.
        assert float(row["l0_max"]) <= {2: 0.5, 3: 6 / 16}[result.k] + 1e-9
        assert float(row["enclosing_radius"]) <= float(row["radius_at_x"]) + 1e-6
        assert float(row["final_loss"]) == pytest.approx(result.final_loss, rel=1e-5)
        assert int(row["hits"]) == result.hit_count and row["succeeded"] == ("1" if result.hit_count == result.k else "0")
        # Every norm figure is the engine's, for the worst mask.
        s = result_geometry(result).summary()
        for column, figure in (("l0_max", "max_abs_l0"), ("l1_max", "max_abs_l1"), ("rel_l1_max", "max_rel_l1"),
                               ("rel_l2_max", "max_rel_l2"), ("linf_max", "max_abs_linf"), ("rel_linf_max", "max_rel_linf"),
                               ("norm_change_l2_max", "max_norm_change_l2"), ("radius_at_x", "radius_at_x"),
                               ("radius_at_x_rel", "radius_at_x_rel"), ("enclosing_radius", "enclosing_radius"),
                               ("enclosing_radius_rel", "enclosing_radius_rel")):
            assert float(row[column]) == pytest.approx(s[figure], rel=1e-5), column
    page = (out / "report.html").read_text()
    from plotly.offline import get_plotlyjs

    assert page.count(get_plotlyjs()[:200]) == 1  # plotly.js inline, once for every figure
    assert page.count("<img src='data:image/png;base64,") == 4  # two runs x (image + masked copy)
    for title in ("Success rate vs K", "Time to 100 % vs K", "The study's claim", "Decision regions", "Gallery"):
        assert title in page
    assert "src=\"https://cdn" not in page  # self-contained
    # The toy's two maps: titled above their figures (in them, the title sat under the legend), and
    # as wide as their boxes (plotly sized a map to a flex box not yet laid out, half covered by the next).
    for title in ("Lines meet in one point", "Lines do not meet"):
        assert re.search(rf"<div style='width:(\d+)px'><h4>{title}[^<]*</h4>", page), title
    assert page.count(f'"width":{TOY_WIDTH}') == 2
    assert "2 runs done now, 0 already done before" in captured.out

    # Same command again: nothing runs, nothing changes.
    before = (out / CSV_FILE).read_bytes()
    stamp = (out / rows[0]["folder"] / "result.json").stat().st_mtime_ns
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out), "--no-report"]) == 0
    assert "0 runs done now, 2 already done before" in capsys.readouterr().out
    assert (out / CSV_FILE).read_bytes() == before
    assert (out / rows[0]["folder"] / "result.json").stat().st_mtime_ns == stamp
    # With the report: it is as the last run left it, so it is not drawn again.
    report_stamp = (out / "report.html").stat().st_mtime_ns
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out)]) == 0
    assert "(nothing new ran, so it is as it was; --report-only rewrites it)" in capsys.readouterr().out
    assert (out / "report.html").stat().st_mtime_ns == report_stamp


class Killed(Exception):
    pass


def saved_folders(out) -> list[str]:
    """Every folder under ``out`` that holds a result.json (hidden half-written ones too), relative to ``out``."""
    return sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("result.json"))


def test_kill_and_resume_gives_the_uninterrupted_csv(tiny_registered, tmp_path):
    full = tmp_path / "full"
    run_sweep(plan(), full)

    out = tmp_path / "killed"
    finished = []

    def die_after_two(key, row):
        finished.append(key)
        if len(finished) == 2:
            raise Killed

    with pytest.raises(Killed):
        run_sweep(plan(), out, hooks=SweepHooks(on_run_end=die_after_two))
    assert len(read_rows(out / CSV_FILE)) == 2
    # A kill between saving a folder and appending its row: the third run's
    # folder exists, its row does not. Simulate it by saving it by hand.
    with pytest.raises(Killed):
        run_sweep(plan(), out, hooks=SweepHooks(on_run_end=lambda k, r: (_ for _ in ()).throw(Killed)))
    rows = read_rows(out / CSV_FILE)
    with open(out / CSV_FILE, "w", newline="") as fh:  # the third row torn, its folder kept
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[:2])
        # A kill mid-append can cut the line inside its last cell (the folder):
        # every column is there, so only the folder tells it is torn.
        fh.write(",".join(rows[2][c] for c in COLUMNS)[:-3])

    started = []
    outcome = run_sweep(plan(), out, hooks=SweepHooks(on_run_start=lambda k, c: started.append(k)))
    assert outcome.skipped == 3 and outcome.ran == 1 and len(started) == 1
    assert rows_without_seconds(out / CSV_FILE) == rows_without_seconds(full / CSV_FILE)
    assert len(read_rows(out / CSV_FILE)) == 4


def test_row_without_folder_is_run_again(tiny_registered, tmp_path):
    out = tmp_path / "sw"
    run_sweep(plan(families=("hstripes",)), out)
    rows = read_rows(out / CSV_FILE)
    shutil.rmtree(out / rows[1]["folder"])
    assert len(reconcile(out)) == 1
    outcome = run_sweep(plan(families=("hstripes",)), out)
    assert outcome.ran == 1 and [r["k"] for r in read_rows(out / CSV_FILE)] == ["2", "3"]


def test_a_full_disk_while_adding_a_row_is_one_sentence_and_the_run_is_kept(tiny_registered, tmp_path, monkeypatch):
    import errno
    import os

    out = tmp_path / "sw"
    real_fsync = os.fsync

    def full_on_csv(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(CSV_FILE):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_on_csv)
    with pytest.raises(UmaskError) as err:
        run_sweep(plan(families=("hstripes",)), out)
    folder = "runs/tiny/hstripes-hide/seed-3/k02-seed0"
    assert str(err.value) == (f"Cannot add a row to '{out / CSV_FILE}': No space left on device; the run is saved in "
                              f"'{folder}' and its row is rebuilt when the same command runs again.")
    monkeypatch.setattr(os, "fsync", real_fsync)  # space again
    outcome = run_sweep(plan(families=("hstripes",)), out)
    assert outcome.skipped == 1 and outcome.ran == 1 and [r["k"] for r in read_rows(out / CSV_FILE)] == ["2", "3"]


def test_hand_mangled_row_is_rebuilt_from_its_folder(tiny_registered, tmp_path):
    out = tmp_path / "sw"
    run_sweep(plan(families=("hstripes",)), out)
    before = rows_without_seconds(out / CSV_FILE)
    text = (out / CSV_FILE).read_text().splitlines()
    cells = text[1].split(",")
    cells[COLUMNS.index("k")] = "three"
    text[1] = ",".join(cells)
    (out / CSV_FILE).write_text("\n".join(text) + "\n")
    outcome = run_sweep(plan(families=("hstripes",)), out)
    assert outcome.ran == 0 and outcome.skipped == 2
    assert rows_without_seconds(out / CSV_FILE) == before


@pytest.mark.parametrize("knob,value", [("seed", None), ("seed", 1.7), ("seed", "0"), ("seed", 1),
                                        ("steps", 2), ("optimizer", "adam")])
def test_a_run_whose_result_json_is_another_runs_is_run_again(tiny_registered, tmp_path, capsys, knob, value):
    """The folder says seed 0, the study's SGD, 3 steps: a result.json that says
    otherwise (hand-edited, or a `generate --overwrite` into the sweep's place) is not this run."""
    out = tmp_path / "sw"
    run_sweep(plan(families=("hstripes",)), out)
    before = rows_without_seconds(out / CSV_FILE)
    path = out / before[0]["folder"] / "result.json"
    meta = json.loads(path.read_text())
    kept = meta["config"][knob]
    meta["config"][knob] = value
    path.write_text(json.dumps(meta))
    assert main(["sweep", "--out", str(out), "--report-only", "--slice-resolution", "0"]) == 0
    outcome = run_sweep(plan(families=("hstripes",)), out)
    assert outcome.ran == 1 and outcome.skipped == 1
    assert rows_without_seconds(out / CSV_FILE) == before
    assert json.loads(path.read_text())["config"][knob] == kept


def test_extending_a_sweep_keeps_old_runs_and_order(tiny_registered, tmp_path):
    out = tmp_path / "sw"
    run_sweep(plan(families=("hstripes",), ks=(3,)), out)
    outcome = run_sweep(plan(families=("hstripes",), ks=(2, 3), seeds=(0, 1)), out)
    assert outcome.skipped == 1 and outcome.ran == 3
    assert [(r["k"], r["seed"]) for r in read_rows(out / CSV_FILE)] == [("2", "0"), ("2", "1"), ("3", "0"), ("3", "1")]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--masks", "hstripes", "--k", "2", "20"], "the most is 16"),
        (["--models", "nosuchnet"], "Unknown model 'nosuchnet'"),
        (["--seeds", "0"], "--seeds 0 must be at least 1"),
        (["--fill", "grey"], "Fill 'grey' is not understood"),
        (["--device", "cuda:7"], "Device 'cuda:7'"),  # no GPU, or no eighth one: refused before anything is written
        (["--slice-resolution", "100000"], "Slice resolution 100000 is not allowed; use 3 to 301 points a side."),
        (["--slice-resolution", "-5"], "Slice resolution -5 is not allowed"),
        (["--models", "tiny32"], "Image size 16 is too small for tiny32, which needs at least 32 pixels a side; use --size 32 or more."),
        (["--models", "tiny32", "--dry-run"], "Image size 16 is too small for tiny32, which needs at least 32 pixels a side"),
        (["--estimate", "--dry-run"], "--estimate and --dry-run each run nothing and print one thing"),
    ],
)
def test_bad_input_is_one_line_and_runs_nothing(tiny_registered, tiny32_registered, tmp_path, capsys, argv, message):
    base = ["--models", "tiny", "--size", "16", "--steps", "2", "--k", "2"]
    code = main(["sweep", *base, *argv, "--out", str(tmp_path / "sw")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "sw").exists()  # not even sweep.json: a later, correct command must not meet it


@pytest.mark.parametrize("mode", ["--dry-run", "--estimate"])
def test_an_unknown_model_stops_a_dry_run_or_estimate_before_it_prints(tmp_path, capsys, mode):
    code = main(["sweep", "--models", "nosuchnet", "--k", "2", "--out", str(tmp_path / "sw"), mode])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("umask: error: Unknown model 'nosuchnet'")


def test_folder_of_another_kind_or_size_is_refused(tiny_registered, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(UmaskError, match="not a sweep's"):
        run_sweep(plan(), tmp_path)
    out = tmp_path / "sw"
    run_sweep(plan(families=("hstripes",), ks=(2,)), out)
    with pytest.raises(UmaskError, match="size = 16, not 32"):
        run_sweep(plan(families=("hstripes",), ks=(2,), size=32), out)
    # The dry run says so too (it listed "1 of 1 run to do"), and writes nothing.
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--size", "32", "--out", str(out), "--dry-run"]) == 2
    assert "holds a sweep with size = 16, not 32" in capsys.readouterr().err
    # A file written beside a sweep (evaluate --json, a note) does not stop it resuming.
    (out / "eval.json").write_text("{}")
    assert run_sweep(plan(families=("hstripes",), ks=(2,)), out).skipped == 1
    (out / "eval.json").unlink()
    from umask.sweep import SETTINGS_FILE, sweep_settings

    def refused(message: str) -> None:
        with pytest.raises(UmaskError, match=message):
            run_sweep(plan(families=("hstripes",), ks=(2,)), out)

    (out / SETTINGS_FILE).write_text("[16]")  # JSON, but not what a sweep writes
    refused(r"sweep.json is not a JSON object, so '.*sw' is not a umask sweep folder \(or that file was damaged: "
            r'write back \{"size": N, "fill": F\} as its runs were made\), or use another --out folder.')
    assert sweep_settings(out) == {}
    (out / SETTINGS_FILE).write_text('{"size": "16", "fill": 0.0}')  # a hand edit: the string "16"
    refused('size = "16", not 16;')
    (out / SETTINGS_FILE).unlink()
    (out / SETTINGS_FILE).mkdir()
    refused("sweep.json is not a JSON object")
    assert sweep_settings(out) == {}
    (out / SETTINGS_FILE).rmdir()
    # A results.csv a spreadsheet re-saved (a Latin-1 byte): the advice is to
    # delete it, and doing so loses nothing: its rows come back from the runs.
    whole = (out / CSV_FILE).read_bytes()
    (out / CSV_FILE).write_bytes(whole.replace(b"tiny", b"t\xefny", 1))
    refused(r"is not a umask results.csv \(it is not UTF-8 text\); delete it and run the same sweep command again: "
            r"its rows are rebuilt from the run folders in '.*sw/runs'.$")
    # Valid UTF-8 that the csv module refuses (a cell over its length limit) says so.
    (out / CSV_FILE).write_bytes(whole + b'"' + b"x" * 200_000 + b'"\n')
    refused(r"is not a umask results.csv \(its CSV is malformed: field larger than field limit \(131072\)\); delete")
    (out / CSV_FILE).unlink()
    assert run_sweep(plan(families=("hstripes",), ks=(2,)), out).ran == 0
    assert (out / CSV_FILE).read_bytes() == whole
    (out / CSV_FILE).unlink()
    (out / CSV_FILE).mkdir()
    refused("results.csv' is a folder")


def test_a_fill_given_as_text_is_the_same_sweep_as_the_number(tiny_registered, tmp_path):
    """sweep.json holds the fill as each run's Config does: "0.5" and 0.5 are one folder's."""
    from umask.sweep import sweep_settings

    assert run_sweep(plan(families=("hstripes",), ks=(2,), fill="0.5"), tmp_path / "sw").ran == 1
    assert sweep_settings(tmp_path / "sw")["fill"] == 0.5
    assert run_sweep(plan(families=("hstripes",), ks=(2,), fill=0.5), tmp_path / "sw").skipped == 1
    with pytest.raises(UmaskError, match="^Fill 'grey' is not understood"):
        plan(fill="grey")


def test_run_folders_of_different_model_specs_never_coincide():
    from umask.sweep import RunKey

    def folder(model):
        return RunKey(model, "grid", "hide", 10, 0, "seed", 5000).folder

    assert folder("resnet50") == "runs/resnet50/grid-hide/seed-5000/k10-seed0"
    a, b = folder("resnet50=ck/a/b.pth"), folder("resnet50=ck/a_b.pth")
    assert a != b and a.startswith("runs/resnet50_ck_a_b.pth-") and b.startswith("runs/resnet50_ck_a_b.pth-")


def test_a_sweep_of_more_runs_than_it_handles_is_refused_before_listing_them(capsys):
    from umask.sweep import MAX_RUNS

    with pytest.raises(UmaskError, match=r"^This sweep would make 3,000,000 runs, more than one sweep handles \(at most "
                                         r"100,000\); use fewer models, K values or seeds"):
        SweepPlan(models=("tiny",), families=("grid",), ks=(2,), seeds=range(3_000_000))
    assert MAX_RUNS == 100_000
    assert len(SweepPlan(models=("tiny",), families=("grid",), ks=(2,), seeds=range(MAX_RUNS)).keys()) == MAX_RUNS
    assert main(["sweep", "--models", "tiny", "--masks", "grid", "--k", "2", "--seeds", "200000", "--dry-run",
                 "--out", "unused"]) == 2
    assert "--seeds 200000 is more runs than one sweep handles (at most 100,000)" in capsys.readouterr().err
    assert main(["sweep", "--seeds", "100000000000", "--dry-run", "--out", "unused"]) == 2  # not "out of memory"
    assert capsys.readouterr().err.startswith("umask: error: --seeds 100000000000 is more runs than one sweep handles")


def test_study_plan_is_the_study():
    p = study_plan()
    assert p.models == ("resnet50", "vgg16", "efficientnet_b4", "alexnet", "googlenet", "mobilenet_v3_small")
    assert p.families == ("grid", "hstripes") and p.ks == (2, 10, 18, 26, 34, 42, 50, 58, 62)
    assert p.preset == "seed" and p.max_steps == 5000 and p.device == "auto" and len(p.keys()) == 108
    p.validate()


def test_dry_run_lists_runs(tiny_registered, tmp_path, capsys):
    assert main(["sweep", *TINY, "--masks", "grid", "--k", "2", "3", "--out", str(tmp_path / "sw"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs to do" in out and not (tmp_path / "sw").exists()
    # The folders say what is finished, as in the run itself: a row lost to a
    # kill (or a damaged results.csv deleted) is rebuilt, never run again, and
    # the check before the runs loads no model for it.
    run_sweep(plan(families=("grid",), ks=(2, 3)), tmp_path / "sw")
    (tmp_path / "sw" / CSV_FILE).unlink()
    assert main(["sweep", *TINY, "--masks", "grid", "--k", "2", "3", "--out", str(tmp_path / "sw"), "--dry-run"]) == 0
    assert "0 of 2 runs to do" in capsys.readouterr().out

    def no_loading(spec, device="cpu"):
        raise AssertionError(f"loaded {spec}")

    outcome = run_sweep(plan(families=("grid",), ks=(2, 3)), tmp_path / "sw", loader=no_loading)
    assert (outcome.ran, outcome.skipped, len(outcome.rows)) == (0, 2, 2)
    # A results.csv the run would refuse, the dry run refuses too (not "0 of 2 to do").
    (tmp_path / "sw" / CSV_FILE).write_bytes(b"garbage\xef\n")
    assert main(["sweep", *TINY, "--masks", "grid", "--k", "2", "3", "--out", str(tmp_path / "sw"), "--dry-run"]) == 2
    assert "is not a umask results.csv (it is not UTF-8 text)" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["sweep", *TINY, "--masks", "grid", "--k", "2", "--out", str(tmp_path / "afile"), "--dry-run"]) == 2
    assert "is a file; give a folder path" in capsys.readouterr().err


def test_a_second_sweep_into_the_same_folder_is_refused(tiny_registered, tmp_path):
    import fcntl

    from umask.sweep import LOCK_FILE

    out = tmp_path / "sweep"
    out.mkdir()
    one = plan(families=("hstripes",), ks=(2,), steps=2)
    with open(out / LOCK_FILE, "a") as held:  # what a running sweep holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UmaskError, match="Another sweep is writing into"):
            run_sweep(one, out)
    assert not (out / CSV_FILE).exists()
    outcome = run_sweep(one, out)  # free again
    assert outcome.ran == 1


def test_report_leaves_out_a_run_folder_deleted_since(tiny_registered, tmp_path, capsys):
    from umask.report import build_report

    out = tmp_path / "sw"
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out), "--no-report"]) == 0
    rows = read_rows(out / CSV_FILE)
    biggest = max(rows, key=lambda r: int(r["k"]))  # the one the geometry section measures
    shutil.rmtree(out / biggest["folder"])
    written = build_report(out, slices=True, slice_resolution=5)
    assert written.unreadable == (biggest["folder"],)
    page = written.path.read_text()
    assert "Success rate vs K" in page and "Gallery" in page
    assert (f"<p class='warn'>1 run folder of results.csv could not be read, so its images are left out (the figures "
            f"come from the CSV): {biggest['folder']}: no result.json there.</p>") in page
    # A damaged one: the loader's sentence says why; the CLI names both.
    (smallest,) = [r for r in rows if r is not biggest]
    (out / smallest["folder"] / "result.json").write_text("{")
    capsys.readouterr()
    assert main(["sweep", "--out", str(out), "--report-only", "--slice-resolution", "0"]) == 0
    err = capsys.readouterr().err
    assert f"note: 2 run folders of results.csv could not be read ({biggest['folder']}, {smallest['folder']})" in err \
        or f"note: 2 run folders of results.csv could not be read ({smallest['folder']}, {biggest['folder']})" in err, err
    page = (out / "report.html").read_text()
    assert "2 run folders of results.csv could not be read" in page and f"{smallest['folder']}: " in page
    assert f"{smallest['folder']}: no result.json" not in page


def test_report_escapes_what_the_csv_says(tiny_registered, tmp_path):
    from umask.report import build_report

    out = tmp_path / "sw"
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out), "--no-report"]) == 0
    rows = read_rows(out / CSV_FILE)
    for row in rows:  # a hand-edited (or hostile) CSV: its cells are text, never markup
        row["mask_family"], row["preset"] = "<script>alert(1)</script>", "<b>bold</b>"
    with open(out / CSV_FILE, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (out / "sweep.json").write_text(json.dumps({"size": 16, "fill": "<i>black</i>"}))  # and its settings file
    page = build_report(out, slices=True, slice_resolution=5).path.read_text()
    assert "<script>alert" not in page and "<b>bold" not in page and "<i>black" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "fill &lt;i&gt;black&lt;/i&gt;" in page


def test_a_run_killed_mid_way_leaves_no_trace_and_is_run_again(tiny_registered, tmp_path):
    sweep = plan(steps=20)
    full = tmp_path / "full"
    run_sweep(sweep, full)
    out = tmp_path / "killed"
    order = []

    def die_in_the_third_run(key, report):
        if not order or order[-1] != key:
            order.append(key)
        if len(order) == 3 and report.step == 10:
            raise Killed

    with pytest.raises(Killed):
        run_sweep(sweep, out, hooks=SweepHooks(on_step=die_in_the_third_run))
    rows = read_rows(out / CSV_FILE)
    assert len(rows) == 2  # the first two runs; none for the one killed, and no folder for it
    assert saved_folders(out) == sorted(r["folder"] for r in rows)
    started = []
    outcome = run_sweep(sweep, out, hooks=SweepHooks(on_run_start=lambda k, c: started.append(k)))
    assert outcome.ran == 2 and started[0] == order[2]  # the killed run comes first
    assert rows_without_seconds(out / CSV_FILE) == rows_without_seconds(full / CSV_FILE)


def test_a_save_killed_mid_way_leaves_nothing_after_the_next_sweep(tiny_registered, tmp_path):
    sweep = plan(families=("hstripes",), ks=(2,))
    out = tmp_path / "sw"
    folder = out / sweep.keys()[0].folder
    # What a kill -9 inside save_result leaves: a hidden staging copy and a retired old copy.
    for leftover in (f".{folder.name}.tmp-abc123", f".{folder.name}.old-1234abcd"):
        (folder.parent / leftover).mkdir(parents=True)
        (folder.parent / leftover / "result.json").write_text("{}")
    (folder.parent / ".notes").mkdir()  # someone's own hidden folder: not umask's to remove
    # Where the run folder was a link to a result, the exchange moves the link aside: it goes, its target stays.
    (folder.parent / f".{folder.name}.tmp-link1234").symlink_to(folder.parent / ".notes")
    assert run_sweep(sweep, out).ran == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == [".notes", folder.name]


def test_a_run_folder_with_foreign_files_stops_the_sweep_before_the_run(tiny_registered, tmp_path):
    sweep = plan(families=("hstripes",), ks=(2, 3))
    out = tmp_path / "sw"
    second = out / sweep.keys()[1].folder
    second.mkdir(parents=True)
    (second / "mine.txt").write_text("keep me")
    started = []
    with pytest.raises(UmaskError, match=f"Output folder '{second}' already holds other files \\(mine.txt\\)"):
        run_sweep(sweep, out, hooks=SweepHooks(on_run_start=lambda k, c: started.append(k)))
    assert started == [sweep.keys()[0]]  # the K = 3 run never started
    assert (second / "mine.txt").read_text() == "keep me"
    assert len(read_rows(out / CSV_FILE)) == 1


@pytest.mark.real
def test_sigkill_of_the_sweep_command_and_the_same_command_again(tmp_path):
    """On the bundled model: a sweep writes its rows and report; a real kill -9 of
    `python -m umask sweep` in the middle of a run, then the same command, gives the same CSV."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    args = ["--masks", "hstripes", "--k", "2", "3", "--seeds", "2", "--steps", "100", "--preset", "seed"]
    command = [sys.executable, "-m", "umask", "sweep", *args]
    env = {**os.environ, "PYTHONPATH": str(root)}
    full, out = tmp_path / "full", tmp_path / "killed"
    subprocess.run([*command, "--out", str(full), "--slice-resolution", "5"], check=True, env=env, cwd=root,
                   capture_output=True, timeout=600)
    rows = read_rows(full / CSV_FILE)
    assert [(r["model"], r["k"], r["seed"], r["max_steps"]) for r in rows] == [
        ("efficientnet_lite0", k, s, "100") for k in ("2", "3") for s in ("0", "1")]
    page = (full / "report.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == 4  # K = 2 and 3, first seed: image + masked copy
    assert "efficientnet_lite0" in page and "Decision regions" in page and "src=\"https://cdn" not in page

    command.append("--no-report")
    proc = subprocess.Popen([*command, "--out", str(out)], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Its progress says when the second run starts (off a terminal, each run's start is a line).
        for line in proc.stderr:
            if line.startswith("sweep, run 2/4"):
                break
        else:
            raise AssertionError("the sweep ended without starting its second run")
        time.sleep(0.2)  # a few steps into it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    done = len(read_rows(out / CSV_FILE))
    assert 1 <= done < 4
    resumed = subprocess.run([*command, "--out", str(out)], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{count(4 - done, 'run')} done now, {done} already done before" in resumed.stdout
    assert rows_without_seconds(out / CSV_FILE) == rows_without_seconds(full / CSV_FILE)
    assert saved_folders(out) == saved_folders(full) == sorted(r["folder"] for r in read_rows(out / CSV_FILE))


def test_the_sweep_bar_weighs_each_run_by_k_and_its_budget(tiny_registered, tmp_path, capsys, monkeypatch):
    from umask.cli import output

    monkeypatch.setattr(output, "LOG_EVERY_S", 0.0)  # every redraw is a line in the captured stderr
    out = tmp_path / "sw"
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "6", "--out", str(out), "--no-report"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep, run")]
    # Work = K x steps: the K = 2 run is 6 of 24 copy-steps (25 %), however few steps it needed.
    after_first = next(line for line in lines if line.startswith("sweep, run 2/2"))
    assert " 25% [" in after_first
    assert " 100% [" in lines[-1]
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "6", "--out", str(out), "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "resuming: 2 of 2 runs already done" in captured.out and captured.err.splitlines()[0].startswith("sweep: 100% [")


def test_models_are_checked_once_each_and_only_with_runs_left(tiny_registered, tmp_path, capsys):
    from umask.models import load_model, weights_available

    if weights_available("efficientnet_lite1"):
        pytest.skip("efficientnet_lite1's package is installed here; the test needs a bundled model that is not")
    loads = []

    def loader(spec, device="cpu"):
        loads.append(spec)
        return load_model(spec, device=device)

    # A bundled model whose package is not installed (lite1 here): skipped, the rest runs.
    p = plan(models=("efficientnet_lite1", "tiny"), families=("hstripes",), ks=(2,))
    with pytest.raises(UmaskError, match="efficientnet_lite1 needs the packages.*; to run the sweep without efficientnet_lite1, add --skip-missing.$"):
        run_sweep(p, tmp_path / "sw", loader=loader)
    assert not (tmp_path / "sw").exists()
    # A dry run says so before anything runs; a model registered in code has its weights.
    assert main(["sweep", *TINY, "--models", "efficientnet_lite1", "tiny", "--masks", "hstripes", "--k", "2",
                 "--out", str(tmp_path / "sw"), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert said.splitlines()[-1] == ("no weights here yet for efficientnet_lite1 (its pip package is not installed): a "
                                     "model that cannot load stops the sweep, unless --skip-missing leaves it out.")
    # Every model missing: one sentence, nothing written, not an empty report.
    with pytest.raises(UmaskError, match=r"^No model of the sweep can load here \(efficientnet_lite1: efficientnet_lite1 needs"):
        run_sweep(plan(models=("efficientnet_lite1",), families=("hstripes",), ks=(2,)), tmp_path / "sw",
                  loader=loader, skip_unavailable=True)
    assert not (tmp_path / "sw").exists()
    loads.clear()
    outcome = run_sweep(p, tmp_path / "sw", loader=loader, skip_unavailable=True)
    assert list(outcome.unavailable) == ["efficientnet_lite1"] and outcome.ran == 1
    assert loads == ["efficientnet_lite1", "tiny"]  # on the CPU, the model checked before the runs is the one they use
    # Resumed with nothing left to run for tiny: no model is loaded at all.
    loads.clear()
    assert run_sweep(plan(families=("hstripes",), ks=(2,)), tmp_path / "sw", loader=loader).ran == 0
    assert loads == []


def test_ctrl_c_while_the_report_is_written_says_the_runs_are_saved(tiny_registered, tmp_path, capsys, monkeypatch):
    from umask.cli import sweep as sweep_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_cli, "build_report", interrupted)
    out = tmp_path / "sw"
    code = main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and err.splitlines()[-1] == (
        f"umask: interrupted while writing the report; the runs and {CSV_FILE} are saved, "
        f"and 'python -m umask sweep --out {out} --report-only' writes it.")
    assert len(read_rows(out / CSV_FILE)) == 1 and not (out / "report.html").exists()
    # That command draws the slices as the sweep asked (TINY's 5 points a side), not at the default.
    from umask.report import build_report

    asked = []

    def recording(*a, **kw):
        asked.append(kw["slice_resolution"])
        return build_report(*a, **kw)

    monkeypatch.setattr(sweep_cli, "build_report", recording)
    assert main(["sweep", "--out", str(out), "--report-only"]) == 0 and asked == [5]
    assert main(["sweep", "--out", str(out), "--report-only", "--slice-resolution", "7"]) == 0
    assert main(["sweep", "--out", str(out), "--report-only"]) == 0 and asked == [5, 7, 7]  # the last one asked is kept
    # Where it cannot be kept (no sweep.json), the hint says it again.
    (out / "sweep.json").unlink()
    monkeypatch.setattr(sweep_cli, "build_report", interrupted)
    capsys.readouterr()
    assert main(["sweep", "--out", str(out), "--report-only", "--slice-resolution", "9"]) == 130
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"'python -m umask sweep --out {out} --report-only --slice-resolution 9' writes it.")
    monkeypatch.setattr(sweep_cli, "build_report", recording)
    # A report while a sweep writes the folder is one of the runs so far, and says so.
    from umask.sweep import _only_writer

    capsys.readouterr()
    with _only_writer(out):
        assert main(["sweep", "--out", str(out), "--report-only"]) == 0
    assert f"note: a sweep is writing into '{out}' right now; this report shows the runs finished so far" in capsys.readouterr().err


def test_ctrl_c_before_any_run_finished_says_so(tiny_registered, tmp_path, capsys, monkeypatch):
    from umask.cli import sweep as sweep_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_cli, "run_sweep", interrupted)
    code = main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--out", str(tmp_path / "sw")])
    assert code == 130 and capsys.readouterr().err.splitlines()[-1] == (
        "umask: interrupted before a run finished (nothing is half-written); run the same command again to resume.")


def test_report_only_repairs_a_torn_csv_and_refuses_options_it_would_ignore(tiny_registered, tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out), "--no-report"]) == 0
    whole = (out / CSV_FILE).read_bytes()
    (out / CSV_FILE).write_bytes(whole[:-15])  # a kill tore the last line inside its folder cell
    capsys.readouterr()
    assert main(["sweep", "--out", str(out), "--report-only", "--slice-resolution", "0"]) == 0
    captured = capsys.readouterr()
    assert "WARNING" not in captured.err and (out / CSV_FILE).read_bytes() == whole  # rebuilt from the run's folder
    assert (out / "report.html").read_text().count("<img src='data:image/png;base64,") == 4  # both runs in the gallery
    # Options of a run do nothing here: said, not ignored.
    stamp = (out / "report.html").stat().st_mtime_ns
    for extra, named in ((["--dry-run"], "--dry-run would do nothing; drop it."),
                         (["--k", "99", "--size", "64"], "--k, --size would do nothing; drop them.")):
        assert main(["sweep", "--out", str(out), "--report-only", *extra]) == 2
        assert capsys.readouterr().err.endswith(named + "\n")
    assert (out / "report.html").stat().st_mtime_ns == stamp
    # A results.csv copied without its run folders (the Study page's download): reported, never emptied.
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / CSV_FILE).write_bytes(whole)
    assert main(["sweep", "--out", str(tmp_path / "copy"), "--report-only", "--slice-resolution", "0"]) == 0
    assert (tmp_path / "copy" / CSV_FILE).read_bytes() == whole
    (tmp_path / "afile").write_text("x")
    assert main(["sweep", "--out", str(tmp_path / "afile"), "--report-only"]) == 2
    assert "is a file, not a sweep folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / CSV_FILE).write_text("")
    with pytest.raises(UmaskError, match="is empty, not a umask results.csv"):
        read_rows(tmp_path / "empty" / CSV_FILE)
    with pytest.raises(UmaskError, match=r"^Sweep folder '.*nowhere' does not exist.$"):
        read_rows(tmp_path / "nowhere" / CSV_FILE)
    with pytest.raises(UmaskError, match=r"^'.*afile' is a file, not a sweep folder.$"):
        read_rows(tmp_path / "afile" / CSV_FILE)


def test_a_row_counts_hits_and_success_as_the_result_does(tiny):
    import dataclasses

    from umask.config import Config
    from umask.optimise import UniversalSearch
    from umask.sweep import RunKey, row_from_result

    result = UniversalSearch(tiny, Config(model="tiny", k=3, size=16, steps=1, seed=0)).run()
    key = RunKey("tiny", "grid", "hide", 3, 0, "fast", 1)
    t = result.targets
    for predictions, hits in (((t[0], t[1], t[2]), 3), ((t[0], t[1], t[0]), 2), ((t[1], t[2], t[0]), 0)):
        row = row_from_result(dataclasses.replace(result, predictions=predictions), key, key.folder)
        assert (row["hits"], row["succeeded"]) == (str(hits), "1" if hits == 3 else "0")


def test_a_csv_from_before_the_absolute_columns_is_read_and_upgraded(tiny_registered, tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["sweep", *TINY, "--masks", "hstripes", "--k", "2", "3", "--out", str(out), "--no-report"]
    assert main(args) == 0
    new = (out / CSV_FILE).read_bytes()
    rows = read_rows(out / CSV_FILE)
    # The same CSV as a sweep made before l1_max, linf_max and norm_change_l2_max existed.
    with open(out / CSV_FILE, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=OLD_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    old = read_rows(out / CSV_FILE)  # read, the missing figures empty (NaN once typed)
    assert [r["l1_max"] for r in old] == ["", ""] and [r["success_rate"] for r in old] == [r["success_rate"] for r in rows]
    assert math.isnan(typed_rows(old)[0]["linf_max"])
    # The same command again: nothing runs, the rows are rebuilt from their folders in the new form.
    assert main(args) == 0
    assert "0 runs done now, 2 already done before" in capsys.readouterr().out
    assert (out / CSV_FILE).read_bytes() == new


def test_progress_lines_name_the_mode_when_a_sweep_runs_both(tiny_registered, tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", *TINY, "--masks", "vstripes", "--modes", "hide", "keep", "--k", "2", "--out", str(out),
                 "--no-report"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split(":")[0] for line in lines] == ["[1/2] tiny vstripes/hide K=2 seed 0", "[2/2] tiny vstripes/keep K=2 seed 0"]


def test_success_figure_draws_the_mean_over_seeds_with_one_sd_bars_kept_in_0_100():
    from umask.plots.study import success_figure

    def row(model, k, rate):
        return dict(model=model, mask_family="grid", mode="hide", preset="fast", max_steps=100, k=k, success_rate=rate)

    rows = [row("a", 2, r) for r in (1.0, 0.5, 0.0)] + [row("a", 10, r) for r in (0.9, 0.7)] + [row("b", 2, 1.0)]
    a, b = success_figure(rows).data
    assert list(a.x) == [2, 10] and list(a.y) == pytest.approx([50.0, 80.0])
    assert list(a.error_y.array) == pytest.approx([50.0, 14.142136]) and a.error_y.visible  # s.d. over seeds (n - 1)
    assert list(a.error_y.arrayminus) == pytest.approx([50.0, 14.142136])
    assert list(b.y) == [100.0] and not b.error_y.visible  # one seed: no bar
    # A bar that would pass 100 % stops there.
    (high,) = success_figure([row("a", 2, r) for r in (1.0, 1.0, 0.7)]).data
    assert list(high.y) == pytest.approx([90.0]) and list(high.error_y.array) == pytest.approx([10.0])
    assert list(high.error_y.arrayminus) == pytest.approx([17.320508])
    # In a line where other points have bars, a point of one seed has none (it drew a bar of 0).
    (mixed,) = success_figure([row("a", 2, r) for r in (1.0, 0.5)] + [row("a", 10, 0.9)]).data
    assert mixed.error_y.visible and math.isnan(mixed.error_y.array[1]) and math.isnan(mixed.error_y.arrayminus[1])


def test_the_reports_geometry_shows_a_universal_image_when_the_sweep_has_one():
    from umask.report import _representatives

    def row(family, k, seed, succeeded):
        return dict(model="m", mask_family=family, k=k, seed=seed, succeeded=succeeded)

    rows = [row("hstripes", 10, 0, False), row("grid", 4, 1, True), row("grid", 4, 0, True), row("hstripes", 2, 0, True)]
    assert _representatives(rows)["m"] == row("hstripes", 2, 0, True)  # it reached 100 %; hstripes K = 10 did not
    assert _representatives(rows[:1])["m"] == rows[0]  # none did: the best there is


def test_dry_run_leaves_out_a_corrupt_checkpoint_as_the_run_would(tiny_registered, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a state dict")
    args = ["sweep", *TINY, "--models", "tiny", f"resnet18={bad}", "--masks", "hstripes", "--k", "2",
            "--out", str(tmp_path / "sw"), "--dry-run"]
    # The file is here, so only loading it tells: without --skip-missing the dry run refuses, as the run would.
    assert main(args) == 2
    assert f"Checkpoint '{bad}' is corrupt or not a PyTorch state dict" in capsys.readouterr().err
    assert main([*args, "--skip-missing"]) == 0
    said = capsys.readouterr()
    assert f"umask: resnet18={bad} left out (--skip-missing): checkpoint '{bad}' is corrupt" in said.err
    states = {line.split()[0]: line.split()[-1] for line in said.out.splitlines() if line.startswith(("tiny", "resnet18"))}
    assert states == {"tiny": "run", f"resnet18={bad}": "out"}  # "to run", "left out"
    assert "\n1 of 2 runs to do;" in said.out and not (tmp_path / "sw").exists()
    alone = ["sweep", *TINY, "--models", f"resnet18={bad}", "--masks", "hstripes", "--k", "2",
             "--out", str(tmp_path / "sw"), "--dry-run", "--skip-missing"]
    assert main(alone) == 0  # the corrupt one alone
    assert capsys.readouterr().out.endswith("\nNo model of the sweep can load here, so the run would be refused.\n")


def test_a_left_out_line_keeps_a_name_that_starts_the_reason():
    from umask.cli.output import left_out

    assert left_out("m", "Checkpoint 'x' is corrupt.") == "umask: m left out (--skip-missing): checkpoint 'x' is corrupt."
    assert left_out("m", "VGG.pt is corrupt.") == "umask: m left out (--skip-missing): VGG.pt is corrupt."
    assert left_out("m", "ResNet weights are missing.").endswith(": ResNet weights are missing.")


def test_estimate_times_the_models_the_sweep_would_run(tiny_registered, tmp_path, capsys):
    args = ["sweep", *TINY, "--masks", "hstripes", "--k", "2", "4", "--out", str(tmp_path / "sw"), "--estimate"]
    assert main([*args, "--models", "tiny", "efficientnet_lite1", "--skip-missing"]) == 0
    out = capsys.readouterr().out
    # lite1's package is not installed: the run would leave it out, so the estimate does (it timed it, random weights).
    assert out.startswith("left out (no weights here, --skip-missing): efficientnet_lite1\n")
    table = [line.split()[0] for line in out.splitlines() if line.startswith(("tiny", "efficientnet"))]
    assert table == ["tiny"] and "2 runs x up to 3 steps on cpu: at most" in out
    assert not (tmp_path / "sw").exists()
    # The run itself says which model it left out, in the words evaluate uses.
    run = ["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--out", str(tmp_path / "sk"), "--no-report"]
    capsys.readouterr()
    assert main([*run, "--models", "tiny", "efficientnet_lite1", "--skip-missing"]) == 0
    assert "umask: efficientnet_lite1 left out (--skip-missing): efficientnet_lite1 needs the packages" in capsys.readouterr().err
    assert main([*args, "--models", "efficientnet_lite1", "--skip-missing"]) == 2
    assert "No model of the sweep has its weights here (efficientnet_lite1), so nothing would run." in capsys.readouterr().err
    # Runs already done in the folder are not counted again, as --dry-run does not list them as to do.
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--out", str(tmp_path / "sw")]) == 0
    capsys.readouterr()
    assert main([*args, "--models", "tiny"]) == 0
    assert "\n1 run (of 2; 1 done) x up to 3 steps on cpu: at most" in capsys.readouterr().out
    assert main([*args, "--models", "tiny", "--k", "2"]) == 0
    assert capsys.readouterr().out == f"Every run of the sweep (1 run) is done in {tmp_path / 'sw'}; nothing is left to time.\n"



def test_a_report_path_that_cannot_be_written_is_said_before_any_run(tiny_registered, tmp_path, capsys):
    """report.html is written last: a folder in its place was said only after every run."""
    out = tmp_path / "sw"
    (out / "report.html").mkdir(parents=True)
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"umask: error: '{out / 'report.html'}' is a folder; give a file path.\n"
    assert not (out / CSV_FILE).exists()
    # Without the report, the runs go on; --report-only then says the same.
    assert main(["sweep", *TINY, "--masks", "hstripes", "--k", "2", "--out", str(out), "--no-report"]) == 0
    assert main(["sweep", "--out", str(out), "--report-only"]) == 2
    assert "is a folder; give a file path." in capsys.readouterr().err
