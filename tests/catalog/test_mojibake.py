"""Titles from a source read in the wrong encoding are repaired at import; correct text is left alone."""
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Image
from catalog.mojibake import mojibake_repaired
from tests.images import DEMO

# The demo manifest's line 235, as it is: Windows-1252 "š" (0x9A) read as Latin-1.
CHODOVIAN = "Chodovian's Dog by Mikolá\x9a Ale\x9a"


@pytest.mark.parametrize(
    "broken, repaired",
    [
        (CHODOVIAN, "Chodovian's Dog by Mikoláš Aleš"),
        ("MikolÃ¡Å¡ AleÅ¡", "Mikoláš Aleš"),  # UTF-8 read as Windows-1252
        ("Itâ€™s a â€œpearâ€\x9d", "It’s a “pear”"),  # the same, with the byte 0x9D Windows-1252 lacks
        ("\x93quoted\x94 \x80 5", "“quoted” € 5"),
        ("Ã©tÃ©", "été"),  # UTF-8 read as Latin-1
    ],
)
def test_text_read_in_the_wrong_encoding_is_repaired(broken, repaired):
    assert mojibake_repaired(broken) == repaired


@pytest.mark.parametrize(
    "correct",
    ["Mikoláš Aleš", "café", "naïve façade", "£5 · ½ price", "Ünïcödé", "日本語のタイトル", "emoji 🍎", "plain ascii", "", "Â"],
)
def test_correct_text_is_left_as_it_is(correct):
    assert mojibake_repaired(correct) == correct


@pytest.mark.django_db
def test_the_demo_title_is_imported_repaired(tmp_path):
    demo_line = next(
        line for line in Path(DEMO, "data.jsonl").read_text(encoding="utf-8").splitlines() if "chodovian_39_s_dog_by_m_01" in line
    )
    record = json.loads(demo_line)
    assert record["title"] == CHODOVIAN
    (tmp_path / "images").mkdir()
    (tmp_path / record["file"]).write_bytes(Path(DEMO, record["file"]).read_bytes())
    record["tags"] = [*record["tags"], "Ale\x9a"]
    (tmp_path / "data.jsonl").write_text(json.dumps(record) + "\n")
    call_command("import_images", str(tmp_path), "--manifest", "data.jsonl", verbosity=0)
    image = Image.objects.get()
    assert image.title == "Chodovian's Dog by Mikoláš Aleš"
    assert image.description == record["description"]  # already right: unchanged
    assert image.tags[-1] == "aleš"
