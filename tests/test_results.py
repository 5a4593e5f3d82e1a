import json

import numpy as np
import pytest
import torch
from PIL import Image

import umask.results as results
from umask.config import Config
from umask.errors import UmaskError
from umask.evaluate import classify_parts
from umask.optimise import UniversalSearch
from umask.results import load_result, result_from_zip, result_to_zip, save_result


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


def test_zip_round_trip(result):
    back = result_from_zip(result_to_zip(result))
    assert torch.equal(back.image, result.image) and back.predictions == result.predictions
    with pytest.raises(UmaskError, match="not a zip archive"):
        result_from_zip(b"hello")


def test_crash_mid_write_leaves_old_result_intact(result, tmp_path, monkeypatch):
    out = save_result(result, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(res, folder):
        (folder / "universal.png").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(results, "_write_folder", crash)
    with pytest.raises(OSError):
        save_result(result, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left behind


def test_refuses_to_overwrite_foreign_folder(result, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UmaskError, match="already holds other files"):
        save_result(result, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_replacing_a_result_works(result, tmp_path):
    save_result(result, tmp_path / "run")
    save_result(result, tmp_path / "run")
    assert load_result(tmp_path / "run").predictions == result.predictions


def test_corrupt_or_missing_files(result, tmp_path):
    with pytest.raises(UmaskError, match="does not exist"):
        load_result(tmp_path / "nothing")
    out = save_result(result, tmp_path / "run")
    (out / "result.json").write_text("{not json")
    with pytest.raises(UmaskError, match="not valid JSON"):
        load_result(out)
    out = save_result(result, tmp_path / "run2")
    (out / "universal.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UmaskError, match="not a readable PNG"):
        load_result(out)
    out = save_result(result, tmp_path / "run3")
    (out / "parts.png").unlink()
    with pytest.raises(UmaskError, match="has no parts.png"):
        load_result(out)


def test_many_parts_use_16_bit_map(tiny, tmp_path):
    cfg = Config(model="tiny", k=300, size=32, mask_family="grid", steps=1, seed=0)
    res = UniversalSearch(tiny, cfg).run()
    save_result(res, tmp_path / "big")
    with Image.open(tmp_path / "big" / "parts.png") as img:
        assert img.mode.startswith("I;16")
    assert torch.equal(load_result(tmp_path / "big").labels, res.labels)


@pytest.mark.parametrize(
    "field,value,message",
    [("fill", "grey", "malformed"), ("mask_mode", "xyz", "must be 'hide' or 'keep'"), ("targets", [1, 2, 3, 5000], "outside 0-999"),
     ("k", "four", "malformed")],
)
def test_bad_result_json_values_are_one_sentence(result, tmp_path, field, value, message):
    out = save_result(result, tmp_path / "run")
    meta = json.loads((out / "result.json").read_text())
    meta[field] = value
    (out / "result.json").write_text(json.dumps(meta))
    with pytest.raises(UmaskError, match=message):
        load_result(out)


def test_damaged_zip_is_one_sentence(result):
    data = bytearray(result_to_zip(result))
    start = data.index(b"universal.png") + 40  # inside the compressed PNG
    data[start:start + 20] = bytes(20)
    with pytest.raises(UmaskError):
        result_from_zip(bytes(data))
