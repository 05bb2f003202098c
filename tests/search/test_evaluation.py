import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from catalog.manifests import row_from_record
from search.evaluation import described_captions, first_relevant_rank, random_scores, score, scores_by_label, worst_labels
from search.management.commands.evaluate_retrieval import Plan, mixed_catalog_split
from tests.images import DEMO, distinct_pngs


def test_scores_from_first_relevant_ranks():
    result = score([1, 3, None, 10])
    assert result.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert result.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 10) / 4)
    assert first_relevant_rank([5, 6, 7], {7, 9}) == 3 and first_relevant_rank([5], {9}) is None


def test_random_baseline_is_exact():
    # One relevant among 4: P(top 1) = 1/4, MRR = (1 + 1/2 + 1/3 + 1/4) / 4.
    result = random_scores([(4, 1)])
    assert result.recall[1] == pytest.approx(0.25) and result.recall[10] == 1
    assert result.mrr == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    # Two relevant among 3: the first is at rank 1 with p 2/3, else rank 2.
    assert random_scores([(3, 2)]).mrr == pytest.approx(2 / 3 + 1 / 3 / 2)


def test_scores_by_label_and_the_worst_labels():
    ranks = [1, None, 3, 12, 2, None, None, None]
    labels = ["a", "a", "b", None, "c", "d", "d", "e"]
    by_label = scores_by_label(ranks, labels)
    assert {label: (scores.recall[10], scores.mrr, scores.queries) for label, scores in by_label.items()} == {
        "a": (0.5, 0.5, 2), "b": (1.0, 1 / 3, 1), "c": (1.0, 0.5, 1), "d": (0.0, 0.0, 2), "e": (0.0, 0.0, 1),
    }
    # Lowest R@10 first, then MRR; of equals the label with more queries.
    assert worst_labels(by_label, count=4) == ["d", "e", "a", "b"]


def test_the_query_field_cannot_be_stored_as_text(tmp_path):
    with pytest.raises(CommandError, match="must not include 'caption'"):
        call_command("evaluate_retrieval", str(tmp_path), "--text-fields", "title,caption")
    with pytest.raises(CommandError, match="must not include 'caption_de': it is a query field"):
        call_command("evaluate_retrieval", str(tmp_path), "--query-field", "caption", "--query-field", "caption_de", "--text-fields", "caption_de")


def test_the_mixed_catalog_splits_whole_caption_groups_at_random():
    captions_of = {0: {"a", "b"}, 1: {"b"}, 2: {"c"}, 3: {"d"}, 4: {"e"}}
    described = described_captions(captions_of, share=0.5, seed=3)
    groups = [{"a", "b"}, {"c"}, {"d"}, {"e"}]
    assert sum(group <= described for group in groups) == 2 and all(group <= described or not group & described for group in groups)
    assert described == described_captions(captions_of, share=0.5, seed=3)
    assert described_captions(captions_of, share=0, seed=3) == set()


@pytest.mark.parametrize("share", ["1", "-0.1"])
def test_the_described_share_must_leave_queries(tmp_path, share):
    with pytest.raises(CommandError, match="--described-share must be at least 0 and below 1"):
        call_command("evaluate_retrieval", str(tmp_path), "--described-share", share)


@pytest.mark.parametrize("options", [["--queries", "described", "--text-fields", "title"], ["--queries", "described", "--described-share", "0.5"]])
def test_described_side_queries_need_a_described_side_with_words(tmp_path, options):
    with pytest.raises(CommandError, match="--queries described needs a --described-share above 0 and words for the described images"):
        call_command("evaluate_retrieval", str(tmp_path), *options)


COLOURS = [  # caption, caption_de, label; purple has no German name
    ("red", "rot", "warm"), ("orange", "orange", "warm"), ("yellow", "gelb", "warm"),
    ("green", "grün", "cool"), ("blue", "blau", "cool"), ("purple", None, "cool"),
]


def colour_set(tmp_path, colours=COLOURS) -> list[dict]:
    """Six flat pictures, each with an English and (but one) a German caption and a title that holds the English word."""
    records = []
    for index, ((caption, german, label), content) in enumerate(zip(colours, distinct_pngs(len(colours)))):
        (tmp_path / f"{index}.png").write_bytes(content)
        record = {"file": f"{index}.png", "caption": caption, "label": label, "title": f"{caption} square"}
        records.append(record | ({"caption_de": german} if german else {}))
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records), encoding="utf-8")
    return records


def split_lines(tmp_path, records: list[dict], query_fields: tuple[str, ...], seed: int) -> set[int]:
    rows = [row_from_record(record, line=line + 1, folder=tmp_path, text_fields=()) for line, record in enumerate(records)]
    plan = Plan(
        text_fields=(), query_fields=query_fields, described_field=query_fields[0], described_share=0.5,
        queries_side="bare", seed=seed, zero_shot=False, worst_labels=5,
    )
    return mixed_catalog_split(rows, records, plan)[1]


def test_the_mixed_catalog_splits_by_picture_the_same_for_every_query_field(tmp_path):
    records = colour_set(tmp_path)
    for seed in range(8):
        # German names that join no two pictures leave the split as English alone made it.
        assert split_lines(tmp_path, records, ("caption", "caption_de"), seed) == split_lines(tmp_path, records, ("caption",), seed)
    # "Hut" names pictures 0 and 3: a German query must not find answers on both sides.
    hats = [record | ({"caption_de": "Hut"} if line in (0, 3) else {}) for line, record in enumerate(records)]
    splits = [split_lines(tmp_path, hats, ("caption", "caption_de"), seed) for seed in range(20)]
    assert all({0, 3} <= described or not {0, 3} & described for described in splits)
    assert any({0, 3} <= described for described in splits) and any(not {0, 3} & described for described in splits)


def test_a_field_no_row_has_is_named_with_the_fields_there_are():
    with pytest.raises(CommandError) as error:
        call_command("evaluate_retrieval", DEMO, "--limit", "100", "--query-field", "caption")
    assert str(error.value) == (
        "no row of data.jsonl has 'caption' (all 100 rows lack it); its rows have category, description, license, source, tags, title. "
        "Name the field with --query-field, e.g. --query-field title"
    )


def test_without_captions_the_titles_are_the_queries_and_it_says_so(capsys):
    # Stopped by the check that follows, before any model runs: the title is the query field now.
    with pytest.raises(CommandError, match="^--text-fields must not include 'title': it is a query field"):
        call_command("evaluate_retrieval", DEMO, "--limit", "100", "--text-fields", "title")
    assert capsys.readouterr().err == "no row of data.jsonl has 'caption': the queries are its 'title' field (name another with --query-field)\n"


def test_unknown_and_unusable_fields_are_refused(tmp_path):
    colour_set(tmp_path)
    with pytest.raises(CommandError, match=r"no row of data.jsonl has 'caption_xx' \(all 6 rows lack it\); its rows have caption, caption_de, label, title\."):
        call_command("evaluate_retrieval", str(tmp_path), "--query-field", "caption,caption_xx")
    with pytest.raises(CommandError, match="Name the field with --described-field, e.g. --described-field title"):
        call_command("evaluate_retrieval", str(tmp_path), "--described-share", "0.5", "--described-field", "keywords_de")
    (tmp_path / "data.jsonl").write_text(json.dumps({"file": "0.png", "caption": "red", "tags": ["red", "square"]}))
    with pytest.raises(CommandError, match="data.jsonl line 1: query field 'tags' holds list, not text"):
        call_command("evaluate_retrieval", str(tmp_path), "--query-field", "tags")


def test_the_described_side_must_not_store_its_own_query_text(tmp_path):
    colour_set(tmp_path)
    described_side = ["--described-share", "0.5", "--queries", "described"]
    with pytest.raises(CommandError, match="--described-field caption_de is a query field: with --queries described its images are the answers"):
        call_command("evaluate_retrieval", str(tmp_path), "--query-field", "caption,caption_de", *described_side, "--described-field", "caption_de")
    records = [record | {"caption_en": record["caption"]} for record in colour_set(tmp_path)]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records), encoding="utf-8")
    with pytest.raises(CommandError, match="'caption' holds the same text as the query field 'caption_en' on every row"):
        call_command("evaluate_retrieval", str(tmp_path), "--query-field", "caption_en", *described_side, "--described-field", "caption")
    with pytest.raises(CommandError, match="--described-field needs a --described-share above 0"):
        call_command("evaluate_retrieval", str(tmp_path), "--described-field", "title")


def demo_pairs(tmp_path) -> list[dict]:
    # Three demo drawings, each also as a smaller JPEG copy: the copy is its nearest picture.
    rows = []
    for path in sorted(Path(DEMO, "images").glob("*.png"))[:3]:
        picture = PILImage.open(path).convert("RGB")
        picture.save(tmp_path / f"{path.stem}.png")
        picture.resize((picture.width * 9 // 10, picture.height * 9 // 10)).save(tmp_path / f"{path.stem}.jpg", quality=85)
        for variant, suffix in enumerate((".png", ".jpg")):
            rows.append({"file": path.stem + suffix, "caption": f"{path.stem} {variant}", "title": path.stem, "group_id": path.stem})
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    return rows


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_evaluate_retrieval_end_to_end(tmp_path, capsys):
    demo_pairs(tmp_path)
    call_command("evaluate_retrieval", str(tmp_path), "--text-fields", "title", "--json", verbosity=0)
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert result["images"] == 6 and result["text_fields"] == ["title"]
    assert set(result["text_to_image"]) == {"hybrid", "semantic", "keyword", "random"}
    assert result["text_to_image"]["random"]["R@1"] == pytest.approx(1 / 6, abs=1e-4)
    assert result["image_to_image"]["semantic"]["R@1"] == 1.0
    assert output[0].startswith(f"{tmp_path}: 6 images, model v1, stored text: title")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_evaluate_retrieval_on_a_mixed_catalog(tmp_path, capsys):
    demo_pairs(tmp_path)
    call_command("evaluate_retrieval", str(tmp_path), "--described-share", "0.5", "--seed", "1", "--zero-shot", "--json", verbosity=0)
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert (result["images"], result["described_images"], result["described_share"], result["seed"]) == (6, 3, 0.5, 1)
    # Queries are the captions of the three bare images only.
    assert {scores["queries"] for scores in result["text_to_image"].values()} == {3}
    assert set(result["text_to_image"]) == {"hybrid", "semantic", "keyword", "random"}
    assert "caption on 3 images (described share 0.5, seed 1), none on the rest" in output[0]
    # The zero-shot version is built in the same catalog and measured on the same queries;
    # picture search ranks the same features.
    zero_shot = result["zero_shot"]
    assert zero_shot["version"] == 2
    assert {scores["queries"] for scores in zero_shot["text_to_image"].values()} == {3}
    assert zero_shot["image_to_image"] == result["image_to_image"]
    assert any(line.startswith(f"{tmp_path}: 6 images, model v2, stored text: caption") for line in output)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_evaluate_retrieval_on_the_described_side(tmp_path, capsys):
    demo_pairs(tmp_path)
    call_command(
        "evaluate_retrieval", str(tmp_path), "--described-share", "0.5", "--seed", "1", "--queries", "described",
        "--text-fields", "title", "--json", verbosity=0,
    )
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert (result["described_images"], result["queries_side"]) == (3, "described")
    # The other three captions of the same split; their images keep their title, not their caption.
    assert {scores["queries"] for scores in result["text_to_image"].values()} == {3}
    assert "title on 3 images (described share 0.5, seed 1), none on the rest; queries: the described images' caption" in output[0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_evaluate_retrieval_reports_each_query_field_and_label(tmp_path, capsys):
    colour_set(tmp_path)
    call_command(
        "evaluate_retrieval", str(tmp_path), "--query-field", "caption,caption_de", "--text-fields", "title", "--worst-labels", "1", "--json",
        verbosity=0,
    )
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert result["query_fields"] == ["caption", "caption_de"]
    assert result["rows_without_query_field"] == {"caption": 0, "caption_de": 1}
    english, german = result["by_query_field"]["caption"], result["by_query_field"]["caption_de"]
    assert result["text_to_image"] == english["text_to_image"]
    # Every title holds its English word; of the German names only "orange" is one of them.
    assert english["text_to_image"]["keyword"] == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MRR": 1.0, "queries": 6}
    assert german["text_to_image"]["keyword"] == {"R@1": 0.2, "R@5": 0.2, "R@10": 0.2, "MRR": 0.2, "queries": 5}
    # One answer among six pictures: R@1 1/6, R@5 5/6, MRR (1 + 1/2 + … + 1/6) / 6.
    assert german["text_to_image"]["random"] == {"R@1": 0.1667, "R@5": 0.8333, "R@10": 1.0, "MRR": 0.4083, "queries": 5}
    assert {label: scores["keyword"] for label, scores in german["by_label"].items()} == {
        "warm": {"R@1": 0.3333, "R@5": 0.3333, "R@10": 0.3333, "MRR": 0.3333, "queries": 3},
        "cool": {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "MRR": 0.0, "queries": 2},
    }
    assert "query field caption: 6 queries" in output
    assert "query field caption_de: 5 queries; rows without it (no query): 1" in output
    assert output.count("worst labels by R@10 (hybrid), 1 of 2:") == 2
    assert "text → image by query field:" in output
    summary = output.index("text → image by query field:")
    metrics = [f"{mode} {metric}" for mode in ("hybrid", "semantic", "keyword") for metric in ("R@1", "R@5", "R@10", "MRR")]
    assert output[summary + 1] == "| " + " | ".join(["query field", "queries", *metrics]) + " |"
    assert output[summary + 4].startswith("| caption_de | 5 | ") and output[summary + 4].endswith(" | 0.200 | 0.200 | 0.200 | 0.200 |")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_evaluate_retrieval_asks_every_query_field_on_the_same_side(tmp_path, capsys):
    colour_set(tmp_path)
    call_command(
        "evaluate_retrieval", str(tmp_path), "--query-field", "caption,caption_de", "--described-share", "0.5", "--seed", "1",
        "--queries", "described", "--described-field", "title", "--json", verbosity=0,
    )
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert (result["described_images"], result["described_field"]) == (3, "title")
    english, german = result["by_query_field"]["caption"], result["by_query_field"]["caption_de"]
    # Seed 1 describes orange, one more warm and one cool picture, all with German names:
    # both fields ask about the same three pictures, and each title holds its English word.
    assert english["text_to_image"]["keyword"] == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "MRR": 1.0, "queries": 3}
    assert german["text_to_image"]["keyword"] == {"R@1": 0.3333, "R@5": 0.3333, "R@10": 0.3333, "MRR": 0.3333, "queries": 3}
    assert {label: scores["keyword"]["queries"] for label, scores in english["by_label"].items()} == {"warm": 2, "cool": 1}
    assert {label: scores["keyword"]["queries"] for label, scores in german["by_label"].items()} == {"warm": 2, "cool": 1}
    assert output[0].endswith("stored text: title on 3 images (described share 0.5, seed 1), none on the rest; queries: the described images' caption, caption_de")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_demo_is_measured_by_its_titles(capsys):
    call_command("evaluate_retrieval", DEMO, "--limit", "8", "--json", verbosity=0)  # as a user would first try it
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert result["query_fields"] == ["title"] and result["text_to_image"]["semantic"]["queries"] == 8
    assert output[0] == f"{DEMO}: 8 images, model v1, stored text: none (vectors alone)"
