import json
from pathlib import Path

from tags import glued_split, tags_clean, vocabulary_from

VOCABULARY = vocabulary_from(
    texts=["A tiger in orange and green", "vector drawing", "animals/big_cats"],
    keywords=["north_america", "vector", "unitedstates"],
)


def test_the_vocabulary_is_prose_and_multi_word_keywords_only():
    assert {"tiger", "orange", "green", "vector", "drawing", "animals", "big", "cats", "north", "america"} <= VOCABULARY
    assert "unitedstates" not in VOCABULARY


def test_junk_goes_and_words_stay_in_order_lower_case_once():
    raw = ["Tiger", "hash(0x8589f20)", "hash", "0x8963570", "11", "747", "g8", "4weels", "food\x82", "www.example.net", "north_america", "pick-up", "tiger", "  big   cat "]
    assert tags_clean(raw, vocabulary=VOCABULARY) == ["tiger", "north america", "pick-up", "big cat"]


def test_glued_words_are_split_only_into_known_words():
    assert tags_clean(["tigerorangegreenvector"], vocabulary=VOCABULARY) == ["tiger", "orange", "green", "vector"]
    assert glued_split("northamerica", VOCABULARY) == ["north", "america"]
    # Unknown and short enough to be a rare word: kept; long and unsplittable: dropped.
    assert tags_clean(["religholiday", "collantpuntarinforzata"], vocabulary=VOCABULARY) == ["religholiday"]
    # Parts shorter than three letters never count, so a real word is not cut into scraps.
    assert glued_split("tigerab", VOCABULARY | {"ab"}) is None


def test_the_demo_manifest_has_clean_tags():
    manifest = Path(__file__).resolve().parents[2] / "catalog/fixtures/openclipart-demo/data.jsonl"
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    tags = {tag for row in rows for tag in row["tags"]}
    assert "keywords" not in rows[0]
    assert {"tiger", "orange", "united", "states"} <= tags
    assert not [tag for tag in tags if tag != tag.lower() or any(character.isdigit() or character in "()._" for character in tag)]
