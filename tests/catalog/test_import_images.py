import json
import os

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
    with pytest.raises(CommandError, match="2 of 4 rows were skipped; the reasons are above") as failure:
        call_command("import_images", str(tmp_path), "--manifest", "data.jsonl", verbosity=0)
    assert failure.value.returncode == 1
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

    with pytest.raises(CommandError):
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
def test_a_clean_import_exits_zero(tmp_path, capsys):
    write_folder(tmp_path, [{"file": "a.png", "title": "A"}], {"a.png": image_bytes()})
    call_command("import_images", str(tmp_path), verbosity=0)
    assert capsys.readouterr().out.strip() == "1 imported, 0 already in the catalog, 0 skipped, of 1 rows"


@pytest.mark.django_db
def test_bad_lines_are_skipped_and_the_good_rows_imported(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(image_bytes(color=(1, 1, 1)))
    (tmp_path / "b.png").write_bytes(image_bytes(color=(2, 2, 2)))
    (tmp_path / "data.jsonl").write_text(
        '{"file": "a.png", "title": "A"}\n'
        "{not json\n"
        '["a list"]\n'
        '{"title": "no file"}\n'
        '{"file": "../../etc/passwd"}\n'
        '{"file": "b.png", "tags": 7}\n'
        '{"file": "b.png", "title": "B"}\n'
    )
    with pytest.raises(CommandError) as failure:
        call_command("import_images", str(tmp_path), verbosity=0)
    out, err = capsys.readouterr()
    assert failure.value.returncode == 1
    assert out.strip() == "2 imported, 0 already in the catalog, 5 skipped, of 7 rows"
    assert err.splitlines() == [
        "skipped line 2: not JSON (Expecting property name enclosed in double quotes)",
        "skipped line 3: expected an object, found list",
        "skipped line 4: no 'file'",
        f"skipped line 5: '../../etc/passwd' points outside {tmp_path}",
        "skipped line 6: tags must be a list of words or a comma-separated string",
    ]
    assert sorted(Image.objects.values_list("title", flat=True)) == ["A", "B"]


@pytest.mark.django_db
def test_csv_rows_are_reported_one_by_one(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(image_bytes(color=(3, 3, 3)))
    (tmp_path / "y.png").write_bytes(image_bytes(color=(4, 4, 4)))
    (tmp_path / "data.csv").write_bytes(
        b"file,title\n"
        b"x.png,Cross\n"
        b"y.png,\xff\xfe\n"
        b"y.png,\"" + b"z" * 200_000 + b"\"\n"
        b",no file\n"
        b"y.png,nul \x00 inside\n"
        b"missing.png,Missing\n"
        b'y.png,"two\nlines"\n'
    )
    with pytest.raises(CommandError):
        call_command("import_images", str(tmp_path), "--manifest", "data.csv", verbosity=0)
    out, err = capsys.readouterr()
    assert out.strip() == "2 imported, 0 already in the catalog, 5 skipped, of 7 rows"
    assert err.splitlines() == [
        "skipped line 3: not UTF-8 text (byte 0xff at column 7)",
        "skipped line 4: not CSV (field larger than field limit (131072))",
        "skipped line 5: no 'file'",
        "skipped y.png (line 6): title contains a NUL character",
        "skipped missing.png (line 7): cannot read: No such file or directory",
    ]
    assert sorted(Image.objects.values_list("title", flat=True)) == ["Cross", "two\nlines"]


@pytest.mark.django_db
def test_limit_counts_bad_lines_too(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(image_bytes(color=(5, 5, 5)))
    (tmp_path / "data.jsonl").write_text('{"file": "a.png"}\n[]\n{"file": "b.png"}\n')
    with pytest.raises(CommandError):
        call_command("import_images", str(tmp_path), "--limit", "2", verbosity=0)
    assert capsys.readouterr().out.strip() == "1 imported, 0 already in the catalog, 1 skipped, of 2 rows"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, make, message",
    [
        ("data.txt", lambda path: path.write_text(""), "use a .jsonl or .csv manifest"),
        ("data.jsonl", lambda path: None, "cannot read: No such file or directory"),
        ("data.jsonl", os.mkfifo, "not a regular file: it is a FIFO"),
    ],
)
def test_an_unusable_manifest_fails_politely(tmp_path, name, make, message):
    make(tmp_path / name)
    with pytest.raises(CommandError, match=message):
        call_command("import_images", str(tmp_path), "--manifest", name, verbosity=0)


def test_a_missing_folder_fails_politely(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_images", str(tmp_path / "nowhere"), verbosity=0)


@pytest.mark.django_db
def test_a_symlinked_manifest_is_followed(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(image_bytes())
    (tmp_path / "real.jsonl").write_text('{"file": "a.png", "title": "A"}\n')
    os.symlink("real.jsonl", tmp_path / "data.jsonl")
    call_command("import_images", str(tmp_path), verbosity=0)
    assert capsys.readouterr().out.strip() == "1 imported, 0 already in the catalog, 0 skipped, of 1 rows"
