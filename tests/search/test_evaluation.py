import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from django.core.management import CommandError, call_command

from search.evaluation import described_captions, first_relevant_rank, random_scores, score
from tests.images import DEMO


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


def test_the_query_field_cannot_be_stored_as_text(tmp_path):
    with pytest.raises(CommandError, match="must not include 'caption'"):
        call_command("evaluate_retrieval", str(tmp_path), "--text-fields", "title,caption")


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
    with pytest.raises(CommandError, match="--queries described needs a --described-share above 0 and --text-fields"):
        call_command("evaluate_retrieval", str(tmp_path), *options)


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
    assert "title on 3 images (described share 0.5, seed 1), none on the rest; queries: the described images' captions" in output[0]
