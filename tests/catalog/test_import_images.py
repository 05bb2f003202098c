import json

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Image
from tests.images import image_bytes


def write_folder(folder, rows, files):
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "data.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")


@pytest.mark.django_db
def test_import_reports_bad_files_and_rerun_adds_nothing(tmp_path, capsys):
    write_folder(
        tmp_path,
        [
            {"file": "a.jpg", "title": "Apple", "keywords": ["fruit"], "category": "food/fruit"},
            {"file": "b.png", "caption": "Banana", "description": "yellow"},
            {"file": "broken.png", "title": "Broken"},
            {"file": "missing.png", "title": "Missing"},
        ],
        {"a.jpg": image_bytes(color=(200, 0, 0)), "b.png": image_bytes(color=(250, 250, 0)), "broken.png": b"nope"},
    )
    call_command("import_images", str(tmp_path), "--manifest", "data.jsonl", verbosity=0)
    out, err = capsys.readouterr()
    assert out.strip() == "2 imported, 0 already in the catalog, 2 skipped, of 4 rows"
    assert "skipped broken.png (line 3): not an image" in err
    assert "skipped missing.png (line 4): cannot read: No such file or directory" in err
    assert list(Image.objects.order_by("title").values_list("title", "tags", "category", "description")) == [
        ("Apple", ["fruit"], "food/fruit", ""),
        ("Banana", [], "", "yellow"),
    ]
    # The file named .jpg is a PNG by content and is stored as one.
    assert Image.objects.get(title="Apple").file.name.endswith(".png")

    call_command("import_images", str(tmp_path), "--manifest", "data.jsonl", verbosity=0)
    assert capsys.readouterr().out.strip() == "0 imported, 2 already in the catalog, 2 skipped, of 4 rows"
    assert Image.objects.count() == 2


@pytest.mark.django_db
def test_csv_manifest(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(image_bytes())
    (tmp_path / "data.csv").write_text("file,title,tags,license\nx.png,Cross,\"red;sign\",CC0\n")
    call_command("import_images", str(tmp_path), "--manifest", "data.csv", verbosity=0)
    assert list(Image.objects.values_list("title", "tags", "license")) == [("Cross", ["red", "sign"], "CC0")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "manifest, message",
    [
        ('{"file": "a.png"}\n{not json\n', "line 2: not JSON"),
        ('{"title": "no file"}\n', "line 1: no 'file'"),
        ('{"file": "../../etc/passwd"}\n', "points outside"),
    ],
)
def test_a_bad_manifest_imports_nothing(tmp_path, manifest, message):
    (tmp_path / "a.png").write_bytes(image_bytes())
    (tmp_path / "data.jsonl").write_text(manifest)
    with pytest.raises(CommandError, match=message):
        call_command("import_images", str(tmp_path), verbosity=0)
    assert Image.objects.count() == 0


def test_a_missing_folder_fails_politely(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_images", str(tmp_path / "nowhere"), verbosity=0)
