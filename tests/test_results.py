import dataclasses
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

import umask.results as results
from umask.config import Config
from umask.errors import UmaskError
from umask.evaluate import classify_parts
from umask.optimise import UniversalSearch
from umask.masks import load_layout
from umask.results import check_result_folder, load_result, result_from_zip, result_to_zip, save_result, zip_name


@pytest.fixture
def result(tiny):
    cfg = Config(model="tiny", k=4, size=16, mask_family="grid", steps=200, seed=0)
    return UniversalSearch(tiny, cfg).run()


def test_folder_format(result, tmp_path):
    out = save_result(result, tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == ["parts.png", "result.json", "universal.png"]
    with Image.open(out / "universal.png") as img:
        assert img.mode == "RGB" and img.size == (16, 16)
    with Image.open(out / "parts.png") as img:
        assert img.mode == "L" and img.size == (16, 16)
        assert sorted(np.unique(np.array(img)).tolist()) == [1, 2, 3, 4]
    meta = json.loads((out / "result.json").read_text())
    for key in ("model", "k", "mask_family", "mask_mode", "fill", "size", "targets", "target_names",
                "predictions", "success_rate", "steps", "seconds", "config", "preprocessing"):
        assert key in meta
    assert meta["k"] == 4 and meta["size"] == 16 and meta["preprocessing"]["resize_to"] is None
    assert meta["preprocessing"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert meta["config"]["targets"] == meta["targets"]


def test_round_trip_reproduces_predictions(result, tmp_path, tiny):
    save_result(result, tmp_path / "run")
    back = load_result(tmp_path / "run")
    assert torch.equal(back.image, result.image)
    assert torch.equal(back.labels, result.labels)
    assert back.targets == result.targets and back.predictions == result.predictions
    again = classify_parts(tiny, back.image, back.labels, mode=back.mask_mode, fill=back.fill, targets=back.targets)
    assert again.predictions == result.predictions
    assert again.target_probs == pytest.approx(result.target_probs, abs=1e-6)


@pytest.mark.parametrize("fill", [0.0, "mean"])
def test_re_evaluating_gives_the_saved_probabilities_to_the_last_digit(tiny, tmp_path, fill):
    """The image read back is contiguous like the one saved: a strided one summed
    the "mean" fill's channel means in another order (0.482845 became 0.482846)."""
    cfg = Config(model="tiny", k=6, size=32, mask_family="random", steps=30, stop_at_success=False, fill=fill)
    save_result(UniversalSearch(tiny, cfg).run(), tmp_path / "run")
    back = load_result(tmp_path / "run")
    assert back.image.is_contiguous()
    saved = json.loads((tmp_path / "run" / "result.json").read_text())["target_probs"]
    again = classify_parts(tiny, back.image, back.labels, mode=back.mask_mode, fill=back.fill, targets=back.targets)
    assert [round(p, 6) for p in again.target_probs] == saved


def test_zip_round_trip(result):
    back = result_from_zip(result_to_zip(result))
    assert torch.equal(back.image, result.image) and back.predictions == result.predictions
    with pytest.raises(UmaskError, match="not a zip archive"):
        result_from_zip(b"hello")


def test_a_zip_is_offered_under_one_safe_file_name(result, tmp_path):
    assert re.fullmatch(rf"umask-tiny-grid-hide-K{result.k}-[0-9a-f]{{6}}\.zip", zip_name(result))
    # A checkpoint spec is a server path: its zip name shows neither the path nor a slash.
    spec = dataclasses.replace(result, model="resnet50=/srv/ck/a.pth")
    name = zip_name(spec)
    assert "/" not in name and re.fullmatch(r"umask-resnet50_srv_ck_a\.pth-[0-9a-f]{8}-grid-hide-K\d+-[0-9a-f]{6}\.zip", name)
    # Another image or other targets of the same model, layout and K: another name; the same result: the same.
    other_image = dataclasses.replace(result, image=1 - result.image)
    other_targets = dataclasses.replace(result, targets=result.targets[::-1])
    assert len({zip_name(result), zip_name(other_image), zip_name(other_targets)}) == 3
    assert zip_name(result) == zip_name(load_result(save_result(result, tmp_path / "r")))


def test_a_zip_file_on_disk_loads_as_its_folder_does(result, tmp_path):
    """The dashboard's download, given to the CLI (evaluate, geometry) as it is."""
    zipped = tmp_path / "umask-tiny-K4.zip"
    zipped.write_bytes(result_to_zip(result))
    back = load_result(zipped)
    assert torch.equal(back.image, result.image) and torch.equal(back.labels, result.labels)
    assert back.predictions == result.predictions and back.config == result.config
    (tmp_path / "notes.txt").write_text("not a result")
    with pytest.raises(UmaskError, match=r"notes.txt' is a file; a result is a folder holding universal.png, parts.png, "
                                         r"result.json \(or a zip of one\)."):
        load_result(tmp_path / "notes.txt")
    # A .zip that is cut short or empty is a damaged zip, not "a file".
    for name, data in (("cut.zip", zipped.read_bytes()[:500]), ("empty.zip", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UmaskError, match=rf"^'{tmp_path / name}' is not a readable zip archive \(not a zip, or one "
                                             r"cut short\); use a zip of a result folder"):
            load_result(tmp_path / name)


def test_crash_mid_write_leaves_old_result_intact(result, tmp_path, monkeypatch):
    out = save_result(result, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(res, folder):
        (folder / "universal.png").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(results, "_write_folder", crash)
    with pytest.raises(UmaskError, match="Cannot write the result to .*: disk full"):
        save_result(result, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left behind


def test_a_saved_result_and_file_are_renamed_durably(result, tmp_path, monkeypatch):
    """The files are fsynced before the rename, and the folder holding the
    rename after it: a power cut then leaves the old or the new one."""
    import stat

    from umask.files import atomic_file

    synced = []
    real_fsync = os.fsync

    def spy(fd):
        mode = os.fstat(fd).st_mode
        synced.append("folder" if stat.S_ISDIR(mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    save_result(result, tmp_path / "run")
    # The three files, the staging folder (its entries) before the rename, the parent (the rename) after.
    assert synced == ["file"] * 3 + ["folder"] * 2
    synced.clear()
    with atomic_file(tmp_path / "report.txt") as fh:
        fh.write("x")
    assert synced == ["file", "folder"]


def test_refuses_to_overwrite_foreign_folder(result, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UmaskError, match="already holds other files"):
        save_result(result, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    # A folder under a result file's name is the user's too: a save would delete what it holds.
    (tmp_path / "hidden" / "universal.png").mkdir(parents=True)
    (tmp_path / "hidden" / "universal.png" / "thesis.txt").write_text("precious")
    with pytest.raises(UmaskError, match=r"already holds other files \(universal.png/\)"):
        save_result(result, tmp_path / "hidden")
    assert (tmp_path / "hidden" / "universal.png" / "thesis.txt").read_text() == "precious"


def test_nothing_is_written_inside_a_saved_result(result, tmp_path):
    """A stranger in a result folder would make that result one --overwrite refuses to replace."""
    from umask.results import check_output_file
    from umask.sweep import check_out_folder

    save_result(result, tmp_path / "r1")
    with pytest.raises(UmaskError, match=r"'.*r1/sub' lies in the result folder '.*r1', which holds only its own files"):
        save_result(result, tmp_path / "r1" / "sub")
    with pytest.raises(UmaskError, match="lies in the result folder"):
        check_out_folder(tmp_path / "r1" / "deeper" / "sweep")
    with pytest.raises(UmaskError, match="lies in the result folder"):
        check_output_file(tmp_path / "r1" / "deeper" / "report.json")
    assert sorted(p.name for p in (tmp_path / "r1").iterdir()) == ["parts.png", "result.json", "universal.png"]
    save_result(result, tmp_path / "r1")  # so it can still be replaced
    # ".." leaves the folder: r1/../r2 is beside r1, and r1/../r1 is r1 itself, replaced as asked.
    save_result(result, tmp_path / "r1" / ".." / "r2")
    check_output_file(tmp_path / "r1" / ".." / "report.json")
    save_result(result, tmp_path / "r1" / ".." / "r1")
    assert (tmp_path / "r2" / "result.json").is_file()
    # A link from elsewhere into the result folder: where the file would land counts.
    (tmp_path / "into").symlink_to(tmp_path / "r1")
    with pytest.raises(UmaskError, match="lies in the result folder"):
        check_output_file(tmp_path / "into" / "report.json")



def test_an_output_file_is_never_a_link_or_a_device(tmp_path):
    """The file is written beside its path and renamed over it: a link would be replaced, not written through."""
    from umask.results import check_output_file

    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(UmaskError, match=rf"'{tmp_path}/link.json' is a link \(to '{tmp_path}/real.json'\); give the path"):
        check_output_file(tmp_path / "link.json", overwrite=True)
    with pytest.raises(UmaskError, match="'/dev/null' is not a plain file \\(a device, a pipe or a socket\\)"):
        check_output_file("/dev/null", overwrite=True)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UmaskError, match="is not a plain file"):
        check_output_file(tmp_path / "pipe", overwrite=True)
    check_output_file(tmp_path / "real.json", overwrite=True)  # a plain file, replaced as asked


def test_a_failed_second_rename_puts_the_old_result_back(result, tmp_path, monkeypatch):
    """Where folders cannot be exchanged: old aside, new in place; if the
    second rename fails, the old result is renamed back, whole."""
    import dataclasses

    out = save_result(result, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    new_prefix, _ = results._staging_prefixes(out)
    real_rename = Path.rename

    def staging_cannot_move(self, target):
        if self.name.startswith(new_prefix):
            raise OSError(5, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(results, "_exchange", lambda new, old: False)
    monkeypatch.setattr(Path, "rename", staging_cannot_move)
    with pytest.raises(UmaskError, match="Cannot write the result to .*: Input/output error"):
        save_result(dataclasses.replace(result, steps=result.steps + 1), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_replacing_a_result_swaps_the_folders_whole(result, tmp_path, monkeypatch, swap):
    import dataclasses
    import os

    exchanges = []
    exchange = results._exchange
    if swap == "exchange":  # Linux: one renameat2 call, no moment without a result
        def recorded(new, old):
            swapped = exchange(new, old)
            exchanges.append((old, swapped))
            return swapped

        monkeypatch.setattr(results, "_exchange", recorded)
    else:  # elsewhere: old aside, new in place
        monkeypatch.setattr(results, "_exchange", lambda new, old: False)
    save_result(result, tmp_path / "run")
    inode = os.stat(tmp_path / "run").st_ino
    newer = dataclasses.replace(result, steps=result.steps + 1)
    save_result(newer, tmp_path / "run")
    assert load_result(tmp_path / "run").steps == newer.steps
    assert os.stat(tmp_path / "run").st_ino != inode  # a new folder, not files rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # neither the old nor a staging folder is left
    if swap == "exchange" and exchanges == [(tmp_path / "run", False)]:
        pytest.skip("this filesystem cannot exchange two folders (the two-rename path above still ran)")
    assert exchanges == ([(tmp_path / "run", True)] if swap == "exchange" else [])


@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_replacing_a_link_to_a_result_replaces_the_link_and_keeps_its_target(result, tmp_path, monkeypatch, swap):
    import dataclasses

    if swap == "two renames":
        monkeypatch.setattr(results, "_exchange", lambda new, old: False)
    old = save_result(result, tmp_path / "run-17")
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    (tmp_path / "latest").symlink_to("run-17")
    newer = dataclasses.replace(result, steps=result.steps + 1)
    save_result(newer, tmp_path / "latest")
    assert not (tmp_path / "latest").is_symlink() and load_result(tmp_path / "latest").steps == newer.steps
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "run-17"]  # no link left aside, hidden


def test_corrupt_or_missing_files(result, tmp_path):
    with pytest.raises(UmaskError, match="does not exist"):
        load_result(tmp_path / "nothing")
    out = save_result(result, tmp_path / "run")
    with pytest.raises(UmaskError, match="universal.png' is a file; a result is a folder holding universal.png, parts.png"):
        load_result(out / "universal.png")
    # Broken, nested past the recursion limit, or with an integer of thousands of digits (a hand edit gone wrong).
    for text in ("{not json", "[" * 100_000 + "]" * 100_000, '{"k": ' + "9" * 5000 + "}"):
        (out / "result.json").write_text(text)
        with pytest.raises(UmaskError, match="not valid JSON"):
            load_result(out)
    out = save_result(result, tmp_path / "run2")
    (out / "universal.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UmaskError, match="not a readable PNG"):
        load_result(out)
    out = save_result(result, tmp_path / "run3")
    (out / "parts.png").unlink()
    with pytest.raises(UmaskError, match="is incomplete: it has no parts.png"):
        load_result(out)
    (out / "parts.png").mkdir()
    with pytest.raises(UmaskError, match="is incomplete: its parts.png is a folder"):
        load_result(out)
    out = save_result(result, tmp_path / "run4")
    with Image.open(out / "universal.png") as img:
        img.save(out / "universal.png", format="JPEG")
    with pytest.raises(UmaskError, match="is a JPEG file, not a PNG"):
        load_result(out)
    out = save_result(result, tmp_path / "run5")
    with Image.open(out / "universal.png") as img:
        img.convert("L").save(out / "universal.png")
    with pytest.raises(UmaskError, match="universal.png is grey, not 8-bit RGB as a result's image is saved"):
        load_result(out)
    with pytest.raises(UmaskError, match="^An empty path was given; give a result folder"):
        load_result("")
    # Predictions edited against the saved success rate: they cannot both be the saved image's.
    out = save_result(result, tmp_path / "run6")
    meta = json.loads((out / "result.json").read_text())
    hits = sum(p == t for p, t in zip(meta["predictions"], meta["targets"]))
    (out / "result.json").write_text(json.dumps({**meta, "success_rate": (hits + 1) / meta["k"]}))
    with pytest.raises(UmaskError, match=rf"success_rate {(hits + 1) / meta['k']:g} but its predictions hit {hits} of its "
                                         rf"{meta['k']} targets; the result is corrupt\.$"):
        load_result(out)
    del meta["success_rate"]  # left out (a result written by hand): its predictions' rate
    (out / "result.json").write_text(json.dumps(meta))
    assert load_result(out).success_rate == hits / meta["k"]


def test_an_oversized_image_is_refused_before_it_is_decoded(result, tmp_path, monkeypatch):
    out = save_result(result, tmp_path / "run")
    meta = json.loads((out / "result.json").read_text())
    (out / "result.json").write_text(json.dumps({**meta, "size": 50000}))
    with pytest.raises(UmaskError, match="says the image is 50000 pixels wide; umask's images are 8 to 1024"):
        load_result(out)
    # A 5000 x 5000 PNG (a few kB; 75 MB decoded as RGB) under a result.json of the right size.
    (out / "result.json").write_text(json.dumps(meta))
    Image.new("1", (5000, 5000)).save(out / "universal.png")
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("the image was decoded"))
    with pytest.raises(UmaskError, match="universal.png is 5000x5000 but result.json says 16x16"):
        load_result(out)


def test_quantise_rounds_to_the_nearest_8_bit_level():
    from umask.images import image_to_uint8, quantise

    x = torch.tensor([0.0, 0.4 / 255, 0.6 / 255, 127.5 / 255 - 1e-4, 254.6 / 255, 1.0, 1.2, -0.1])
    assert torch.equal(quantise(x) * 255, torch.tensor([0.0, 0.0, 1.0, 127.0, 255.0, 255.0, 255.0, 0.0]))
    image = torch.full((3, 2, 2), 0.6 / 255)
    assert (image_to_uint8(image) == 1).all()  # what the PNG holds is what quantise measured


def test_many_parts_use_16_bit_map(tiny, tmp_path):
    cfg = Config(model="tiny", k=300, size=32, mask_family="grid", steps=1, seed=0)
    res = UniversalSearch(tiny, cfg).run()
    save_result(res, tmp_path / "big")
    with Image.open(tmp_path / "big" / "parts.png") as img:
        assert img.mode.startswith("I;16")
    assert torch.equal(load_result(tmp_path / "big").labels, res.labels)


@pytest.mark.parametrize(
    "field,value,message",
    [("fill", "grey", "malformed"), ("mask_mode", "xyz", "must be 'hide' or 'keep'"),
     ("mask_family", "hexagons", "has mask_family 'hexagons'; it must be one of grid, hstripes, vstripes, random, custom"), ("targets", [1, 2, 3, 5000], "outside 0-999"),
     ("targets", [1, 2, 2, 3], "names a target class more than once; a result's targets are distinct"),
     ("k", "four", "malformed"), ("k", 3.7, "malformed"), ("size", True, "malformed"), ("targets", "123", "malformed"),
     ("k", float("inf"), "malformed"), ("steps", float("inf"), "malformed .*timings"),
     ("target_names", ["x", "y", "z", "w"], "target_names that are not the names of its targets"),
     ("targets", [1, 2, 3], "K = 4 in result.json but 3 targets")],
)
def test_bad_result_json_values_are_one_sentence(result, tmp_path, field, value, message):
    out = save_result(result, tmp_path / "run")
    meta = json.loads((out / "result.json").read_text())
    meta[field] = value
    (out / "result.json").write_text(json.dumps(meta))
    with pytest.raises(UmaskError, match=message):
        load_result(out)


def test_a_zip_bomb_is_refused_before_it_is_unpacked(result, monkeypatch):
    import umask.results as results

    # A 70 MB result.json of spaces deflates to about 70 kB: refused from its declared size, unread.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("universal.png", "parts.png"):
            archive.writestr(name, b"")
        archive.writestr("result.json", b" " * (70 * 2**20))
    assert len(buffer.getvalue()) < 2**20
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda *a, **k: pytest.fail("a member was inflated"))
    with pytest.raises(UmaskError, match="The zip's result.json unpacks to 70 MB, more than a result holds"):
        results.result_from_zip(buffer.getvalue())


def test_damaged_zip_is_one_sentence(result):
    data = bytearray(result_to_zip(result))
    start = data.index(b"universal.png") + 40  # inside the compressed PNG
    data[start:start + 20] = bytes(20)
    with pytest.raises(UmaskError) as err:
        result_from_zip(bytes(data))
    assert str(err.value) == "The zip is damaged or encrypted; use a zip of a result folder (the Download button's, or a folder zipped as it is)."


def test_result_json_checks_lengths_types_and_fills_in_missing_names(result, tmp_path):
    out = save_result(result, tmp_path / "run")
    meta = json.loads((out / "result.json").read_text())

    def load_with(**changes):
        (out / "result.json").write_text(json.dumps({**meta, **changes}))
        return load_result(out)

    from umask.targets import imagenet_classes

    assert load_with(target_names=None).target_names == tuple(imagenet_classes()[t] for t in result.targets)
    with pytest.raises(UmaskError, match="4 target names and 2 probabilities"):
        load_with(target_probs=[0.5, 0.5])
    with pytest.raises(UmaskError, match="3 target names"):
        load_with(target_names=["a", "b", "c"])
    with pytest.raises(UmaskError, match="malformed model or preprocessing"):
        load_with(preprocessing=[0.5])
    for model in (7, "", "  ", "resnet18=", "=weights.pth"):  # a checkpoint spec needs both halves
        with pytest.raises(UmaskError, match="malformed model or preprocessing"):
            load_with(model=model)
    assert load_with(model="resnet18=/elsewhere/r.pth").model == "resnet18=/elsewhere/r.pth"  # the file may be gone
    for steps in ("12", 3.7, True):
        with pytest.raises(UmaskError, match="malformed target names, probabilities or timings"):
            load_with(steps=steps)
    for bad in ({"resize_to": "big"}, {"resize_to": 4}, {"resize_to": 50000}, {"std": [0.2, 0.2]}, {"mean": ["a", 0.4, 0.4]}, {"std": [0.2, 0.0, 0.2]}):
        with pytest.raises(UmaskError, match="malformed model or preprocessing"):
            load_with(preprocessing={**meta["preprocessing"], **bad})
    (out / "result.json").write_text("42")
    with pytest.raises(UmaskError, match="is not a JSON object"):
        load_result(out)


def test_a_zip_of_two_results_is_refused_by_name(result, tmp_path):
    for name in ("a", "b"):
        save_result(result, tmp_path / "runs" / name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((tmp_path / "runs").rglob("*.*")):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    with pytest.raises(UmaskError, match=r"holds 2 results \('runs/a', 'runs/b'\); use a zip of one result folder"):
        result_from_zip(buffer.getvalue())
    # One folder in the zip (as `zip -r r.zip runs/a` makes) reads as before.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((tmp_path / "runs" / "a").iterdir()):
            archive.write(path, path.relative_to(tmp_path).as_posix())
    assert torch.equal(result_from_zip(buffer.getvalue()).image, result.image)
    # A zip without the part map: said of the zip, not of a temporary folder.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("universal.png", "result.json"):
            archive.write(tmp_path / "runs" / "a" / name, name)
    with pytest.raises(UmaskError) as err:
        result_from_zip(buffer.getvalue())
    assert str(err.value).startswith("The zip has no parts.png; a result zip holds universal.png, parts.png, result.json")


def test_saved_folders_and_files_get_the_usual_modes(result, tmp_path):
    from umask.files import DIR_MODE, FILE_MODE

    out = save_result(result, tmp_path / "run")
    assert out.stat().st_mode & 0o777 == DIR_MODE
    assert all(p.stat().st_mode & 0o777 == FILE_MODE for p in out.iterdir())


def test_text_files_are_utf8_whatever_the_locale(tmp_path):
    """An ASCII locale (LC_ALL=C, no UTF-8 coercion) must not break a write:
    reports embed plotly.js, which holds non-ASCII characters."""
    import subprocess
    import sys

    script = (
        "import sys; from plotly.offline import get_plotlyjs; from umask.files import atomic_file\n"
        "with atomic_file(sys.argv[1]) as fh: fh.write(get_plotlyjs() + '\\u03b5')\n"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "page.html")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from plotly.offline import get_plotlyjs

    assert (tmp_path / "page.html").read_bytes() == (get_plotlyjs() + "\u03b5").encode("utf-8")


def test_unwritable_places_are_one_sentence(result, tmp_path, monkeypatch):
    from umask.files import atomic_file, check_writable

    (tmp_path / "file").write_text("x")
    with pytest.raises(UmaskError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "out.json")
    with pytest.raises(UmaskError, match="is a folder; give a file path"):
        check_writable(tmp_path)
    with pytest.raises(UmaskError, match="is a file; give a folder path"):
        check_writable(tmp_path / "file", folder=True)
    with pytest.raises(UmaskError, match="Cannot write"):
        with atomic_file(tmp_path / "file" / "out.json") as fh:
            fh.write("{}")
    with pytest.raises(UmaskError, match="Cannot write"):
        with atomic_file(tmp_path) as fh:
            fh.write("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no temporary file left behind
    # A full disk: one sentence, and the file that was there is untouched.
    import errno

    (tmp_path / "kept.json").write_text("old")
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
        with pytest.raises(UmaskError) as err:
            with atomic_file(tmp_path / "kept.json") as fh:
                fh.write("new")
    assert str(err.value) == f"Cannot write '{tmp_path / 'kept.json'}': No space left on device; nothing there was changed."
    assert (tmp_path / "kept.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "kept.json"]
    (tmp_path / "kept.json").unlink()
    with atomic_file(tmp_path / "new" / "deeper" / "out.json") as fh:  # missing folders are made
        fh.write("{}")
    assert (tmp_path / "new" / "deeper" / "out.json").read_text() == "{}"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UmaskError, match="nothing can be written in .*Permission denied"):
            check_writable(locked / "run", folder=True)
        with pytest.raises(UmaskError, match="nothing can be written in .*Permission denied"):
            save_result(result, locked / "run")
    if Path("/proc/self").is_dir():  # writable by its bits for root, yet nobody can create a file there
        with pytest.raises(UmaskError, match="Cannot write '/proc/umask-run': nothing can be written in '/proc'"):
            check_writable("/proc/umask-run", folder=True)
    with pytest.raises(UmaskError, match="is the current folder or holds it; a result folder is replaced whole"):
        save_result(result, ".")
    with pytest.raises(UmaskError, match="is the current folder or holds it"):
        check_result_folder(Path.cwd().parent)
    with pytest.raises(UmaskError, match="lies inside '.*', which this command reads"):
        check_writable(tmp_path / "new" / "report.json", reads=(tmp_path / "new",))
    with pytest.raises(UmaskError, match="out.json' is what this command reads; write to another path"):
        check_writable(tmp_path / "new" / "deeper" / "out.json", reads=(tmp_path / "new" / "deeper" / "out.json",))
    check_writable(tmp_path / "elsewhere.json", reads=(tmp_path / "new",))


def zip_of(folder: Path, **replaced: bytes) -> bytes:
    """The zip of a result folder, with some of its files' bytes replaced."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr(path.name, replaced.get(path.name.replace(".", "_"), path.read_bytes()))
    return buffer.getvalue()


def test_an_uploaded_zip_is_named_as_the_zip_in_its_errors(result, tmp_path):
    out = save_result(result, tmp_path / "run")
    with pytest.raises(UmaskError) as err:
        result_from_zip(zip_of(out, result_json=b"{not json"))
    assert str(err.value) == "The zip's result.json is not valid JSON; the result is corrupt."
    meta = json.loads((out / "result.json").read_text())
    with pytest.raises(UmaskError) as err:
        result_from_zip(zip_of(out, result_json=json.dumps({**meta, "k": 3}).encode()))
    assert str(err.value) == "The zip is inconsistent: K = 3 in result.json but 4 parts in parts.png and 4 targets and 4 predictions."
    # A zip file on disk (the CLI's `evaluate r.zip`) is named by its path.
    (tmp_path / "r.zip").write_bytes(zip_of(out, result_json=b"{not json"))
    with pytest.raises(UmaskError) as err:
        load_result(tmp_path / "r.zip")
    assert str(err.value) == "r.zip's result.json is not valid JSON; the result is corrupt."
    (tmp_path / "r.zip").write_bytes(zip_of(out, parts_png=b""))
    with pytest.raises(UmaskError) as err:
        load_result(tmp_path / "r.zip")
    assert str(err.value) == (f"Part map parts.png in '{tmp_path / 'r.zip'}' is not a readable image; "
                              "give a grey PNG where value k+1 marks part k.")


def test_an_image_too_large_to_decode_is_named_for_what_it_is(result, tmp_path, monkeypatch):
    out = save_result(result, tmp_path / "run")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (2048, 1024)).save(photo)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 16 x 16 = 256 is over twice that, as a bomb is over Pillow's real limit
    with pytest.raises(UmaskError) as err:
        result_from_zip(zip_of(out))
    assert str(err.value) == "The zip's universal.png is far larger than a result's image (1024 x 1024 at most); the result is corrupt."
    with pytest.raises(UmaskError, match=r"^Part map '.*parts.png' is far larger than the 16x16 image; they must match.$"):
        load_layout(out / "parts.png", 16)
    from umask.images import load_photo

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**6)  # 2 megapixels is over twice that
    with pytest.raises(UmaskError, match=r"^Photo '.*photo.png' has more than 2 megapixels, too many to read; give a smaller"):
        load_photo(photo)


def test_a_saved_result_runs_again_from_its_config_and_parts_with_its_map_file_gone(tiny, tmp_path):
    # As the README's "Using the package" does it: a shared result has its parts.png, not the map file it was made from.
    labels = np.zeros((16, 16), np.uint8)
    labels[:, 5:] = 1
    labels[9:, :] = 2
    labels[:4, :4] = 3
    Image.fromarray(labels).save(tmp_path / "map.png")
    config = Config(model="tiny", k=3, size=16, mask_family="custom", layout_path=str(tmp_path / "map.png"), steps=20)
    first = UniversalSearch(tiny, config).run()
    save_result(first, tmp_path / "run")
    (tmp_path / "map.png").unlink()
    saved = load_result(tmp_path / "run")
    again = UniversalSearch(tiny, Config.from_dict(saved.config), labels=saved.labels).run()
    assert torch.equal(again.image, first.image) and again.predictions == first.predictions
