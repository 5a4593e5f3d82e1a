import pytest

from umask.errors import UmaskError
from umask.targets import choose_targets, imagenet_classes, resolve_class, search_classes


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
