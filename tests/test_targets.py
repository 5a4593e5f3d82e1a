import pytest

from umask.errors import UmaskError
from umask.targets import class_label, choose_targets, imagenet_classes, resolve_class, search_classes


def test_class_list():
    names = imagenet_classes()
    assert len(names) == 1000 and names[1] == "goldfish" and names[980] == "volcano"


@pytest.mark.parametrize("spec,index", [(1, 1), ("1", 1), ("goldfish", 1), ("GoldFish", 1), ("volc", 980), ("tench", 0)])
def test_resolve(spec, index):
    assert resolve_class(spec) == index


def test_ambiguous_prefix_lists_candidates():
    with pytest.raises(UmaskError) as err:
        resolve_class("gold")
    assert "ambiguous" in str(err.value) and "'goldfish' (1)" in str(err.value) and "'goldfinch' (11)" in str(err.value)


def test_a_prefix_that_is_also_a_word_of_other_names_is_ambiguous():
    # "cat" starts one name only (catamaran), but whoever types it more likely means a cat.
    with pytest.raises(UmaskError) as err:
        resolve_class("cat")
    assert str(err.value).startswith("Class name 'cat' is ambiguous: it could be 'tiger cat' (282), 'Persian cat' (283)")
    assert "'catamaran' (484)" in str(err.value)
    # A whole word of exactly one name is that name.
    assert resolve_class("lantern") == 607  # jack-o'-lantern


def test_every_class_can_be_named_exactly():
    names = imagenet_classes()
    assert [resolve_class(name) for name in names] == list(range(1000))
    with pytest.raises(UmaskError, match="'CARDIGAN' is ambiguous: it names 'Cardigan' \\(264\\), 'cardigan' \\(474\\)"):
        resolve_class("CARDIGAN")
    # Spaces as typed: two between words, a tab, some at the ends.
    assert resolve_class("tiger  cat") == resolve_class(" Tiger\tCat ") == names.index("tiger cat")
    assert [i for i, _ in search_classes("tiger  cat")] == [names.index("tiger cat")]


def test_unknown_name_lists_close_matches():
    with pytest.raises(UmaskError, match=r"Unknown ImageNet class 'goldfsh'\. Close matches: 'goldfish' \(1\)"):
        resolve_class("goldfsh")
    with pytest.raises(UmaskError, match="out of range"):
        resolve_class(1000)


def test_random_targets_distinct_and_seeded():
    a = choose_targets(62, seed=5)
    assert len(set(a)) == 62 and all(0 <= t < 1000 for t in a)
    assert a == choose_targets(62, seed=5) and a != choose_targets(62, seed=6)


def test_given_targets():
    assert choose_targets(2, given=["goldfish", 980]) == (1, 980)
    with pytest.raises(UmaskError, match="3 targets given for K = 2"):
        choose_targets(2, given=["goldfish", "volcano", "tench"])
    with pytest.raises(UmaskError, match="distinct"):
        choose_targets(2, given=["goldfish", 1])


def test_search():
    assert (1, "goldfish") in search_classes("GOLD")
    assert len(search_classes()) == 1000
    assert search_classes(" 980 ") == [(980, "volcano")] and search_classes("1000") == []  # an index, not a substring


def test_search_and_resolve_read_an_index_alike():
    """One rule for "is this an index": a sign is one, a non-ASCII digit is not."""
    for text, index in (("5", 5), ("+5", 5), (" 980 ", 980)):
        assert search_classes(text) == [(index, imagenet_classes()[index])] and resolve_class(text) == index
    for text in ("-1", "1000"):
        assert search_classes(text) == []
        with pytest.raises(UmaskError, match=f"^Class index {int(text)} is out of range"):
            resolve_class(text)
    assert type(resolve_class(True)) is int  # stored as 1, not as JSON's true
    assert search_classes("５") == []  # a fullwidth digit: a name no class holds
    with pytest.raises(UmaskError, match="^Unknown ImageNet class '５'"):
        resolve_class("５")


def test_class_names_are_torchvisions_and_a_damaged_list_is_one_sentence(tmp_path, monkeypatch):
    from torchvision.models import ResNet50_Weights

    from umask import targets

    # The same names, in the same order, as every torchvision ImageNet model's weights carry.
    assert list(imagenet_classes()) == ResNet50_Weights.DEFAULT.meta["categories"]
    short = tmp_path / "imagenet_classes.txt"
    short.write_text("only\ntwo\n")
    monkeypatch.setattr(targets, "CLASSES_FILE", short)
    targets.imagenet_classes.cache_clear()
    try:
        with pytest.raises(UmaskError, match=r"^The ImageNet class names in '.*imagenet_classes.txt' are missing or "
                                             r"damaged; restore that file from the umask repository.$"):
            targets.imagenet_classes()
        short.unlink()
        with pytest.raises(UmaskError, match="are missing or damaged"):
            targets.imagenet_classes()
    finally:
        monkeypatch.undo()
        targets.imagenet_classes.cache_clear()
    assert len(targets.imagenet_classes()) == 1000


def test_a_class_is_labelled_by_name_and_index():
    assert class_label(1) == "goldfish (1)" and class_label(980) == "volcano (980)"
    assert class_label(1, ["a", "b"]) == "b (1)"  # a model's own names when given
