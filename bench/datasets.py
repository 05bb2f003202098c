"""Build the evaluation sets from their public packages, for `evaluate_retrieval` and the benches.

    python bench/datasets.py [--data .glimpse/data] [--only openclipart|emoji] [--workers 2]
    make datasets DATA=folder

openclipart: Debian's openclipart-svg and openclipart-png 1:0.18+dfsg-19 (Open Clip Art
Library 0.18, public domain), fetched with `apt-get download` and unpacked with `dpkg-deb`.
2,710 drawings with their artists' titles, descriptions and keywords, a category from
the folder tree, and clean `tags` (catalog/tags.py) beside the raw `keywords`.

emoji: the same 1,906 emoji by three artists, from npm (`npm pack`): openmoji 17.0.0
(CC-BY-SA-4.0, SVGs rasterised at 72 px), emoji-datasource-google and -twitter 16.0.0
(Apache-2.0 and CC-BY-4.0, 64 px PNGs), captions and keywords from Unicode CLDR via
openmoji.json; `group_id` marks the same emoji across artists.

Each set lands in DATA/<name>/ as images/ and data.jsonl (one JSON object per image,
`file` relative to the folder), plus the licence texts; downloads stay in DATA/downloads/
and are reused. Rasterising SVGs needs cairosvg (`pip install -e '.[datasets]'`).
"""
import argparse
import collections
import hashlib
import html
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from PIL import Image, ImageChops
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from catalog.tags import tags_clean, vocabulary_from  # noqa: E402

DEBIAN_PACKAGES = {"openclipart-svg": "1:0.18+dfsg-19", "openclipart-png": "1:0.18+dfsg-19"}
NPM_PACKAGES = {"openmoji": "17.0.0", "emoji-datasource": "16.0.0", "emoji-datasource-google": "16.0.0", "emoji-datasource-twitter": "16.0.0"}

MAX_SIDE = 256  # openclipart images are shrunk to this longest side, never enlarged
MIN_PNG_SIDE = 64  # smaller PNG renditions (3×2 px flags, 29 px icons) are rasterised from the SVG instead
MAX_TITLE_USES = 3  # titles used more often are placeholders ("gramastar", "card")
BOILERPLATE_TITLE = re.compile(r"^part of the flat icon collection", re.I)
INK_TOLERANCE = 24  # per-channel difference from the dominant colour that counts as ink
MIN_INK = 0.005  # images with less ink than this share of pixels are near blank
OPENMOJI_SIDE = 72  # OpenMoji SVGs use a 72×72 viewBox
# A few PNG renditions are about 20,000 × 30,000 px: trusted files, shrunk on reading.
Image.MAX_IMAGE_PIXELS = 1_000_000_000
EMOJI_LICENCES = {"openmoji": "CC-BY-SA-4.0", "noto": "Apache-2.0", "twemoji": "CC-BY-4.0"}

DC = "{http://purl.org/dc/elements/1.1/}"
EMAIL = re.compile(r"\(?\s*(?:(?:e-?mail|contact)\s*:?\s*)?[\w.+-]+@[\w-]+(?:\.[\w-]+)+\s*\)?", re.I)
PUBLIC_DOMAIN_BOILERPLATE = re.compile(r"This work is hereby released into the Public Domain\..*?(?:94105, USA\.|$)", re.I | re.S)


class DatasetError(Exception):
    pass


# ------------------------------------------------------------------ downloads


def run_client(command: list[str], *, cwd: Path, what: str) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise DatasetError(f"{command[0]} is not installed; it is needed to fetch {what}") from None
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout).strip().splitlines()[-3:]
        raise DatasetError(f"could not fetch {what} with `{' '.join(command)}` (is its registry reachable?):\n  " + "\n  ".join(detail)) from None
    except subprocess.TimeoutExpired:
        raise DatasetError(f"fetching {what} took over an hour; is its registry reachable?") from None


def debian_unpacked(*, downloads: Path) -> Path:
    """The two .deb files, downloaded once and unpacked; returns the folder holding svg/ and png/."""
    unpacked = downloads / "openclipart"
    share = unpacked / "usr/share/openclipart"
    if (share / "svg").is_dir() and (share / "png").is_dir():
        return share
    downloads.mkdir(parents=True, exist_ok=True)
    for package, version in tqdm(DEBIAN_PACKAGES.items(), desc="Debian packages", unit="package"):
        debs = list(downloads.glob(f"{package}_*.deb"))
        if not debs:
            run_client(["apt-get", "download", f"{package}={version}"], cwd=downloads, what=f"the Debian package {package}")
            debs = list(downloads.glob(f"{package}_*.deb"))
        run_client(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], cwd=downloads, what=f"the files of {debs[0].name}")
    return share


def npm_unpacked(*, downloads: Path) -> Path:
    """The npm packages' tarballs, downloaded once and unpacked side by side as node_modules/ would hold them."""
    modules = downloads / "node_modules"
    downloads.mkdir(parents=True, exist_ok=True)
    for package, version in tqdm(NPM_PACKAGES.items(), desc="npm packages", unit="package"):
        target = modules / package
        if (target / "package.json").is_file():
            continue
        tarballs = list(downloads.glob(f"{package}-{version}.tgz"))
        if not tarballs:
            run_client(["npm", "pack", f"{package}@{version}", "--silent"], cwd=downloads, what=f"the npm package {package}@{version}")
            tarballs = list(downloads.glob(f"{package}-{version}.tgz"))
        partial = modules / f".{package}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(partial, filter="data")
        partial.joinpath("package").rename(target)
        partial.rmdir()
    return modules


# ------------------------------------------------------------------ pixels


def flattened(image: Image.Image, *, max_side: int | None = None) -> Image.Image:
    """RGB with transparency composited on white, the longest side at most `max_side`."""
    if image.mode not in ("RGBA", "RGB"):
        image = image.convert("RGBA")  # palette, grey and tRNS transparency
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        background.alpha_composite(image)
        image = background
    return image.convert("RGB")


def rasterised(path: Path, **size) -> Image.Image:
    try:
        import cairosvg
    except ImportError:
        raise DatasetError("rasterising SVGs needs cairosvg: pip install -e '.[datasets]'") from None
    return Image.open(io.BytesIO(cairosvg.svg2png(url=str(path), **size)))


def ink_share(image: Image.Image) -> float:
    """Share of pixels that differ noticeably from the most common colour."""
    pixels = image.size[0] * image.size[1]
    dominant = max(image.getcolors(pixels))[1]
    red, green, blue = ImageChops.difference(image, Image.new("RGB", image.size, dominant)).split()
    histogram = ImageChops.lighter(ImageChops.lighter(red, green), blue).histogram()
    return sum(histogram[INK_TOLERANCE + 1 :]) / pixels


def drawing_pixels(item: tuple[str, Path, Path]) -> dict:
    """Worker: a drawing's normalised pixels (from its PNG, or its SVG where the PNG is unusable), or why not."""
    relative, png, svg = item
    image, used, error = None, None, ""
    if png.exists():
        try:
            with Image.open(png) as opened:
                opened.load()
                image, used = flattened(opened, max_side=MAX_SIDE), "png"
        except Exception as failure:  # any decoder error means a broken file
            error = f"png: {failure}"
    if image is None or max(image.size) < MIN_PNG_SIDE:
        try:
            drawn = flattened(rasterised(svg, output_width=MAX_SIDE), max_side=MAX_SIDE)
            if image is None or ink_share(drawn) >= MIN_INK:
                image, used = drawn, "svg"
        except DatasetError:
            raise
        except Exception as failure:  # keep the small PNG if there is one
            error += f" svg: {failure}"
    if image is None or min(image.size) < 1:
        return {"relative": relative, "skip": "broken", "error": error.strip() or "empty image"}
    if ink_share(image) < MIN_INK:
        return {"relative": relative, "skip": "near_blank"}
    return {"relative": relative, "used": used, "size": image.size, "pixels": image.tobytes()}


# ------------------------------------------------------------------ openclipart


def element_text(element) -> str:
    if element is None:
        return ""
    # Some files escape entities twice (&amp;quot;), so unescape once more.
    return html.unescape(re.sub(r"\s+", " ", "".join(element.itertext())).strip())


def svg_metadata(path: Path) -> tuple[str, str, list[str], str]:
    """(title, description, keywords, creator) from the SVG's first cc:Work block."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError:  # not well-formed: read the fields with patterns instead
        raw = path.read_text(encoding="utf-8", errors="replace")

        def field(tag: str) -> str:
            found = re.search(r"<cc:Work[^>]*>.*?<dc:%s>(.*?)</dc:%s>" % (tag, tag), raw, re.S)
            return html.unescape(re.sub(r"\s+", " ", found.group(1)).strip()) if found else ""

        subject = re.search(r"<dc:subject>(.*?)</dc:subject>", raw, re.S)
        keywords = [html.unescape(keyword.strip()) for keyword in re.findall(r"<rdf:li>(.*?)</rdf:li>", subject.group(1), re.S)] if subject else []
        return field("title"), field("description"), keywords, ""
    work = next((element for element in root.iter() if isinstance(element.tag, str) and element.tag.endswith("}Work")), None)
    if work is None:
        return "", "", [], ""
    subject = work.find(DC + "subject")
    keywords = [element_text(item) for item in subject.iter() if item.tag.endswith("}li")] if subject is not None else []
    return element_text(work.find(DC + "title")), element_text(work.find(DC + "description")), keywords, element_text(work.find(DC + "creator"))


def title_clean(title: str) -> str:
    title = re.sub(r"^clipart by [^-]+-\s*", "", title, flags=re.I)
    title = EMAIL.sub(" ", title)
    title = re.sub(r"\.(svg|png)$", "", title.strip(), flags=re.I).replace("_", " ")
    return re.sub(r"\s+", " ", title).strip(" -,;:")


def description_clean(description: str) -> str:
    description = EMAIL.sub(" ", PUBLIC_DOMAIN_BOILERPLATE.sub(" ", description))
    return re.sub(r"\s+", " ", description).strip(" -,;:")


def keywords_clean(keywords: list[str]) -> list[str]:
    """De-duplicated (case-insensitively), original spelling, no e-mail addresses."""
    kept, seen = [], set()
    for keyword in keywords:
        keyword = re.sub(r"\s+", " ", keyword).strip()
        if keyword and "@" not in keyword and keyword.lower() not in seen:
            seen.add(keyword.lower())
            kept.append(keyword)
    return kept


def title_key(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip().lower()


def openclipart_build(*, share: Path, out: Path, workers: int) -> dict:
    svg_root, png_root = share / "svg", share / "png"
    skipped = collections.Counter()
    drawings = []
    # Folder by folder, files sorted within each: "first in path order" below means this order.
    paths = []
    for folder, subfolders, files in os.walk(svg_root):
        subfolders.sort()
        paths += [Path(folder, name) for name in sorted(files) if name.endswith(".svg")]
    for path in tqdm(paths, desc="openclipart metadata", unit="svg"):
        if path.is_symlink():  # the package links some drawings into a second folder
            skipped["svg_symlink_to_other_folder"] += 1
            continue
        title, description, keywords, creator = svg_metadata(path)
        drawings.append({"relative": path.relative_to(svg_root).as_posix(), "title": title_clean(title), "creator": creator,
                         "description": description_clean(description), "keywords": keywords_clean(keywords)})
    uses = collections.Counter(title_key(drawing["title"]) for drawing in drawings)
    kept = []
    for drawing in drawings:
        if not drawing["title"] or not re.search(r"[^\W\d_]", drawing["title"]):
            skipped["no_usable_title"] += 1
        elif uses[title_key(drawing["title"])] > MAX_TITLE_USES:
            skipped[f"title_used_more_than_{MAX_TITLE_USES}_times"] += 1
        elif BOILERPLATE_TITLE.match(drawing["title"]):
            skipped["boilerplate_title"] += 1
        elif title_key(drawing["title"]) == title_key(drawing["creator"]):
            skipped["title_is_the_author_name"] += 1
        else:
            kept.append(drawing)
    by_path = {drawing["relative"]: drawing for drawing in kept}
    vocabulary = vocabulary_from(
        texts=[text for drawing in kept for text in (drawing["title"], drawing["description"], drawing["relative"].replace("/", " "))],
        keywords=[keyword for drawing in kept for keyword in drawing["keywords"]],
    )
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    items = [(drawing["relative"], png_root / (drawing["relative"][:-4] + ".png"), svg_root / drawing["relative"]) for drawing in kept]
    rows, seen, names = [], {}, set()
    with multiprocessing.Pool(workers, maxtasksperchild=50) as pool:
        for result in tqdm(pool.imap(drawing_pixels, items, chunksize=2), total=len(items), desc="openclipart pixels", unit="image"):
            drawing = by_path[result["relative"]]
            if "skip" in result:
                skipped[result["skip"]] += 1
                continue
            digest = hashlib.md5(repr(result["size"]).encode() + result["pixels"]).hexdigest()
            if digest in seen:  # the same drawing filed in two folders: the first in path order stays
                skipped["exact_pixel_duplicate"] += 1
                continue
            seen[digest] = drawing["relative"]
            parts = drawing["relative"].split("/")
            name = base = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts))[:-4]
            number = 1
            while name in names:
                number += 1
                name = f"{base}_{number}"
            names.add(name)
            Image.frombytes("RGB", result["size"], result["pixels"]).save(images / f"{name}.png", optimize=True)
            source = "png/" + drawing["relative"][:-4] + ".png" if result["used"] == "png" else "svg/" + drawing["relative"]
            category = f"{parts[0]}/{parts[-2] if len(parts) > 2 else parts[0]}"
            rows.append({
                "file": f"images/{name}.png",
                "caption": drawing["title"],
                "title": drawing["title"],
                "description": drawing["description"],
                "keywords": drawing["keywords"],
                "tags": tags_clean(drawing["keywords"], vocabulary=vocabulary),
                "category": category,
                "license": "public-domain",
                "source": f"openclipart:{source}",
                "label": category,
            })
    rows.sort(key=lambda row: row["file"])
    manifest_write(out / "data.jsonl", rows)
    copyright = share.parent / "doc/openclipart-svg/copyright"
    if copyright.is_file():
        shutil.copyfile(copyright, out / "COPYRIGHT")
    return {"images": len(rows), "with_description": sum(bool(row["description"]) for row in rows),
            "categories": len({row["category"] for row in rows}), "skipped": dict(skipped)}


# ------------------------------------------------------------------ emoji


def without_variation_selector(hexcode: str) -> str:
    """'2764-FE0F-200D-1F525' -> '2764-200D-1F525'."""
    return "-".join(part for part in hexcode.upper().split("-") if part != "FE0F")


def emoji_image(path: Path) -> Image.Image:
    if path.suffix == ".svg":
        return flattened(rasterised(path, output_width=OPENMOJI_SIDE, output_height=OPENMOJI_SIDE))
    with Image.open(path) as opened:
        return flattened(opened.convert("RGBA"))


def emoji_build(*, modules: Path, out: Path) -> dict:
    openmoji = json.loads((modules / "openmoji/data/openmoji.json").read_text(encoding="utf-8"))
    listed = {without_variation_selector(entry["unified"]): entry for entry in json.loads((modules / "emoji-datasource/emoji.json").read_text(encoding="utf-8"))}
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows, skipped, seen = [], collections.Counter(), set()
    for entry in tqdm(openmoji, desc="emoji", unit="emoji"):
        key = without_variation_selector(entry["hexcode"])
        if entry.get("skintone"):
            skipped["skin_tone_variant"] += 1
            continue
        if key not in listed:
            skipped["not_in_emoji_datasource"] += 1  # OpenMoji's own extras and newer emoji
            continue
        standard = listed[key]
        if standard["category"] == "Component":  # skin-tone and hair swatches
            skipped["component"] += 1
            continue
        if key in seen:
            skipped["duplicate_codepoints"] += 1
            continue
        sources = {
            "openmoji": modules / "openmoji/color/svg" / f"{entry['hexcode']}.svg",
            "noto": modules / "emoji-datasource-google/img/google/64" / standard["image"] if standard.get("has_img_google") else None,
            "twemoji": modules / "emoji-datasource-twitter/img/twitter/64" / standard["image"] if standard.get("has_img_twitter") else None,
        }
        missing = [style for style, path in sources.items() if path is None or not path.exists()]
        if missing:
            skipped["missing_" + "+".join(missing)] += 1
            continue
        seen.add(key)
        keywords = [tag.strip() for tag in (entry.get("tags") or "").split(",") if tag.strip()]
        for style, path in sources.items():
            name = f"{style}_{key}.png"
            emoji_image(path).save(images / name, optimize=True)
            rows.append({"file": f"images/{name}", "caption": entry["annotation"], "label": entry["subgroups"], "coarse_label": entry["group"],
                         "group_id": key, "style": style, "keywords": keywords, "license": EMOJI_LICENCES[style]})
    manifest_write(out / "data.jsonl", rows)
    licences = out / "licenses"
    licences.mkdir(exist_ok=True)
    for package in ("openmoji", "emoji-datasource-google", "emoji-datasource-twitter"):
        for licence in (modules / package).glob("LICEN[CS]E*"):
            shutil.copyfile(licence, licences / f"{package}-{licence.name}")
    return {"images": len(rows), "emoji": len(seen), "styles": dict(collections.Counter(row["style"] for row in rows)), "skipped": dict(skipped)}


def manifest_write(path: Path, rows: list[dict]) -> None:
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(".glimpse/data"), help="where the sets go (default .glimpse/data)")
    parser.add_argument("--only", choices=["openclipart", "emoji"], help="build one set")
    parser.add_argument("--workers", type=int, default=max(1, min(4, multiprocessing.cpu_count())), help="processes decoding openclipart")
    options = parser.parse_args()
    downloads = options.data / "downloads"
    try:
        if options.only in (None, "openclipart"):
            summary = openclipart_build(share=debian_unpacked(downloads=downloads), out=options.data / "openclipart", workers=options.workers)
            print("openclipart:", json.dumps(summary))
        if options.only in (None, "emoji"):
            summary = emoji_build(modules=npm_unpacked(downloads=downloads), out=options.data / "emoji")
            print("emoji:", json.dumps(summary))
    except DatasetError as error:
        print(f"datasets: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
