"""Build the evaluation sets from their public packages, for `evaluate_retrieval` and the benches.

    python bench/datasets.py [--data .glimpse/data] [--only SET] [--from FOLDER] [--workers 2]
    make datasets DATA=folder

openclipart: Debian's openclipart-svg and openclipart-png 1:0.18+dfsg-19 (Open Clip Art
Library 0.18, public domain), fetched with `apt-get download` and unpacked with `dpkg-deb`.
2,710 drawings with their artists' titles, descriptions and keywords, a category from
the folder tree, and clean `tags` (catalog/tags.py) beside the raw `keywords`.

emoji: the same 1,906 emoji by three artists, from npm (`npm pack`): openmoji 17.0.0
(CC-BY-SA-4.0, SVGs rasterised at 72 px), emoji-datasource-google and -twitter 16.0.0
(Apache-2.0 and CC-BY-4.0, 64 px PNGs), captions and keywords from Unicode CLDR via
openmoji.json; `group_id` marks the same emoji across artists.

The two multilingual sets are made from those two (built first, here or in the folder
named by --from) and the Unicode CLDR emoji names in en zh ja ko de es fr ru ar hi, from
npm cldr-annotations-full and cldr-annotations-derived-full 48.2.0 (Unicode-3.0):

emoji-multilingual: every emoji row plus `caption_<language>` (CLDR's short name) and
`keywords_<language>` (CLDR's keywords), and `split`, "tune" or "confirm" by a hash of
`group_id`, so that one half can be tuned on and the other confirm it.

openclipart-multilingual: the emoji whose English name is one word ("tiger") matched to
the drawings whose title holds that word or whose keywords include it, one row per
(drawing, word), the word as `caption` and `group_id`, its CLDR names as
`caption_<language>`. Words that mean something else in the drawings or in the other
languages are left out (EXCLUDED_WORDS, with the reasons); dictionary.tsv lists every
one-word name, its drawings and its fate, for the review a new version of either needs.

text-in-pictures: pictures whose content is writing, to measure finding "dollar sign", "the
letter q", "number 7", "euro", a word or a Chinese word by the text in a picture (OCR).
324 texts (bench/text_pictures.py lists them: 52 letters in both cases, 10 digits, 16
currency and other signs, 150 English words, 34 phrases, number plates, prices and codes,
62 Chinese words with their English meaning) drawn 3 times each on 256 px RGB pictures with
Pillow, in 19 DejaVu and Liberation 2 faces (Latin) or 4 Noto CJK SC faces (Chinese), from
Debian's fonts-dejavu-core, fonts-dejavu-extra, fonts-liberation2 and fonts-noto-cjk. Each
variant has its own face and background (plain light, plain dark, gradient, random shapes,
noise); the writing spans 15 to 80 % of the picture (a font of at least 18 px), is turned
by 3 to 30 degrees in 40 % of the pictures and stands on a sign plate in 30 %, all drawn
from seeds, so a rebuild gives the same pixels. `captions` lists the English ways to ask
("dollar sign", "dollar", "the dollar symbol", "$"; `caption` is the first), `caption_zh`
the Chinese word or the sign's Chinese name, `text` what is written, `kind` (also `label`)
letter, digit, sign, word, phrase or chinese, `group_id` the text, `split` "tune" or
"confirm" by a hash of the text: tune on one half, confirm on the other. The openclipart
drawings that show writing join them (kind "openclipart", caption their title, all
"confirm"), from the built openclipart set, here or in the folder named by --from: those
whose keywords or title words include one of WRITING_WORDS or whose title is in capitals,
less flags and the drawings that NO_WRITING lists after a look at each.

Each set lands in DATA/<name>/ as images/ and data.jsonl (one JSON object per image,
`file` relative to the folder), plus the licence texts; downloads stay in DATA/downloads/
and are reused. The images that the multilingual sets and text-in-pictures take from
another set are hard links to (or, across file systems, copies of) its files. Rasterising
SVGs needs cairosvg (`pip install -e '.[datasets]'`).
"""
import argparse
import collections
import functools
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
from common import manifest_rows  # noqa: E402
from tags import tags_clean, vocabulary_from  # noqa: E402
from text_pictures import CJK_FACES, LATIN_FACES, Item, faces_for, faces_in, items, picture  # noqa: E402

DEBIAN_PACKAGES = {"openclipart-svg": "1:0.18+dfsg-19", "openclipart-png": "1:0.18+dfsg-19"}
# Fonts from Debian too, pinned, so that the rendered pictures are the same on any machine;
# Liberation 2 rather than fonts-liberation (1.07), which is GPL-2 with a font exception, not OFL.
FONT_PACKAGES = {"fonts-dejavu-core": "2.37-6", "fonts-dejavu-extra": "2.37-6", "fonts-liberation2": "2.1.5-1", "fonts-noto-cjk": "1:20220127+repack1-1"}
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
SETS = ("openclipart", "emoji", "emoji-multilingual", "openclipart-multilingual", "text-in-pictures")  # in build order: the later ones are made from the first two
EMOJI_LICENCES = {"openmoji": "CC-BY-SA-4.0", "noto": "Apache-2.0", "twemoji": "CC-BY-4.0"}
CLDR_VERSION = "48.2.0"
CLDR_FOLDERS = {"cldr-annotations-full": "annotations", "cldr-annotations-derived-full": "annotationsDerived"}  # package -> its folder of <language>/annotations.json
LANGUAGES = ("en", "zh", "ja", "ko", "de", "es", "fr", "ru", "ar", "hi")  # English first: the others are its translations
VARIATION_SELECTOR = "\ufe0f"  # CLDR keys and group_id both leave it out today; stripped so that a key with it still matches

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
    for package, version in tqdm(DEBIAN_PACKAGES.items(), desc="Debian packages", unit="package"):
        debian_package_unpack(package, version, downloads=downloads, into=unpacked)
    return share


def debian_package_unpack(package: str, version: str, *, downloads: Path, into: Path) -> None:
    """The package's .deb, downloaded into `downloads` unless it is there, unpacked into `into`."""
    downloads.mkdir(parents=True, exist_ok=True)
    debs = list(downloads.glob(f"{package}_*.deb"))
    if not debs:
        run_client(["apt-get", "download", f"{package}={version}"], cwd=downloads, what=f"the Debian package {package}")
        debs = list(downloads.glob(f"{package}_*.deb"))
    run_client(["dpkg-deb", "-x", str(debs[0]), str(into)], cwd=downloads, what=f"the files of {debs[0].name}")


def fonts_unpacked(*, downloads: Path) -> Path:
    """The font packages, downloaded once and unpacked; returns their usr/share/fonts."""
    unpacked = downloads / "fonts"
    fonts = unpacked / "usr/share/fonts"
    needed = [fonts / relative for _, relative, _ in LATIN_FACES + CJK_FACES]
    if all(path.is_file() for path in needed):
        return fonts
    for package, version in tqdm(FONT_PACKAGES.items(), desc="font packages", unit="package"):
        debian_package_unpack(package, version, downloads=downloads, into=unpacked)
    if missing := [path for path in needed if not path.is_file()]:
        raise DatasetError(f"the font packages hold no {missing[0].relative_to(fonts)}; delete {unpacked} and {downloads}/fonts-*.deb to fetch them again")
    return fonts


def npm_tarball(*, package: str, version: str, downloads: Path) -> Path:
    """The package's tarball in `downloads`, fetched with `npm pack` unless it is there already."""
    tarball = downloads / f"{package}-{version}.tgz"
    if not tarball.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        run_client(["npm", "pack", f"{package}@{version}", "--silent"], cwd=downloads, what=f"the npm package {package}@{version}")
    return tarball


def npm_unpacked(*, downloads: Path) -> Path:
    """The npm packages' tarballs, downloaded once and unpacked side by side as node_modules/ would hold them."""
    modules = downloads / "node_modules"
    for package, version in tqdm(NPM_PACKAGES.items(), desc="npm packages", unit="package"):
        target = modules / package
        if (target / "package.json").is_file():
            continue
        tarball = npm_tarball(package=package, version=version, downloads=downloads)
        partial = modules / f".{package}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(tarball) as archive:
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


# ------------------------------------------------------------------ multilingual names (Unicode CLDR)


@functools.cache  # read once for both multilingual sets
def cldr_names(*, downloads: Path) -> dict[str, dict[str, dict]]:
    """language -> emoji (without U+FE0F) -> {"name": CLDR short name, "keywords": [...]}.

    The plain annotations name most emoji; flags, keycaps and sequences such as
    1F468-200D-1F3EB are only in the derived package, read second, so the plain name wins
    where both have one. Only the needed files are read, straight from the tarballs.
    """
    names: dict[str, dict[str, dict]] = {language: {} for language in LANGUAGES}
    for package, folder in tqdm(CLDR_FOLDERS.items(), desc="CLDR packages", unit="package"):
        tarball = npm_tarball(package=package, version=CLDR_VERSION, downloads=downloads)
        for language, annotations in tarball_json(tarball, {language: f"package/{folder}/{language}/annotations.json" for language in LANGUAGES}).items():
            for characters, entry in annotations[folder]["annotations"].items():
                if entry.get("tts"):
                    names[language].setdefault(characters.replace(VARIATION_SELECTOR, ""), {"name": entry["tts"][0], "keywords": list(entry.get("default") or [])})
    return names


def tarball_json(tarball: Path, members: dict[str, str]) -> dict[str, dict]:
    """key -> the parsed JSON member of the tarball named by `members[key]`."""
    wanted = {member: key for key, member in members.items()}
    found = {}
    try:
        with tarfile.open(tarball) as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    found[wanted[member.name]] = json.load(archive.extractfile(member))
    except (tarfile.TarError, OSError, ValueError) as error:
        raise DatasetError(f"cannot read {tarball} ({error}); delete it to fetch it again") from None
    missing = sorted(members[key] for key in members.keys() - found.keys())
    if missing:
        raise DatasetError(f"{tarball} lacks {', '.join(missing)}; delete it to fetch it again")
    return found


def cldr_licences_write(*, downloads: Path, out: Path) -> None:
    """The Unicode-3.0 notice must go with every copy of the CLDR names, so each set carries it."""
    licences = out / "licenses"
    licences.mkdir(parents=True, exist_ok=True)
    for package in CLDR_FOLDERS:
        with tarfile.open(npm_tarball(package=package, version=CLDR_VERSION, downloads=downloads)) as archive:
            (licences / f"{package}-LICENSE").write_bytes(archive.extractfile("package/LICENSE").read())


def built_set(folder: Path, *, needed_by: str) -> list[dict]:
    """The rows of a set built earlier, or why the set that needs it cannot be made."""
    if not (folder / "data.jsonl").is_file():
        raise DatasetError(
            f"{needed_by} is made from the {folder.name} set, and {folder} holds none: build it first "
            f"(--only {folder.name}), or name the folder that holds it with --from"
        )
    return manifest_rows(folder / "data.jsonl")


def images_place(*, source: Path, out: Path, files: list[str]) -> str:
    """Each image as a real file inside `out`: the importer refuses a path that resolves outside
    the set's folder, so a symlink will not do. Hard links cost no space; copies where the two
    folders are on different file systems. Returns which of the two was made."""
    made = "hard links"
    for name in tqdm(files, desc=f"{out.name} images", unit="image"):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(source / name, target)
        except OSError:
            shutil.copyfile(source / name, target)
            made = "copies"
    return made


def licences_copy(*, source: Path, out: Path) -> None:
    """The pictures keep their own licences: the source set's notices go with them."""
    if (source / "COPYRIGHT").is_file():
        shutil.copyfile(source / "COPYRIGHT", out / "COPYRIGHT")
    if (source / "licenses").is_dir():
        shutil.copytree(source / "licenses", out / "licenses", dirs_exist_ok=True)


def emoji_characters(group_id: str) -> str:
    """'1F468-200D-1F3EB' -> the emoji itself (without U+FE0F, as group_id is)."""
    return "".join(chr(int(code, 16)) for code in group_id.split("-"))


def split_of(group_id: str) -> str:
    """'tune' or 'confirm', from a hash of the group_id: stable across builds, the same for
    every picture of a group (every artist of an emoji, every variant of a written text)."""
    return "tune" if hashlib.sha256(group_id.encode()).digest()[0] % 2 == 0 else "confirm"


def emoji_multilingual_build(*, source: Path, downloads: Path, out: Path) -> dict:
    """Every emoji row with its name and keywords in each language and a tune/confirm split.

    caption_en is the set's own caption (CLDR's English name, via OpenMoji); keywords_en is
    CLDR's list, like the other languages', not OpenMoji's older copy in `keywords`. A
    language that has no name for an emoji leaves both of its fields out.
    """
    rows, emoji_rows = [], built_set(source, needed_by="emoji-multilingual")
    names = cldr_names(downloads=downloads)
    for row in tqdm(emoji_rows, desc="emoji-multilingual", unit="row"):
        characters = emoji_characters(row["group_id"])
        row = {**row, "caption_en": row["caption"], "keywords_en": names["en"].get(characters, {"keywords": row["keywords"]})["keywords"]}
        for language in LANGUAGES[1:]:
            if entry := names[language].get(characters):
                row[f"caption_{language}"], row[f"keywords_{language}"] = entry["name"], entry["keywords"]
        rows.append({**row, "split": split_of(row["group_id"])})
    out.mkdir(parents=True, exist_ok=True)
    made = images_place(source=source, out=out, files=[row["file"] for row in rows])
    manifest_write(out / "data.jsonl", rows)
    licences_copy(source=source, out=out)
    cldr_licences_write(downloads=downloads, out=out)
    per_emoji = {row["group_id"]: row for row in rows}.values()
    return {
        "images": len(rows), "emoji": len(per_emoji), "images_are": made,
        "split": dict(collections.Counter(row["split"] for row in per_emoji)),
        "named": {language: sum(f"caption_{language}" in row for row in per_emoji) for language in LANGUAGES},
    }


# ------------------------------------------------------------------ openclipart, multilingual

# One-word emoji names left out after reading every match and every translation by eye.
EXCLUDED_WORDS = {
    # the drawings mean another sense of the English word
    "cook": "the drawings are the Cook Islands flag and a frying pan tagged with the verb",
    "fly": "two of three matches are the verb (an eagle, an airplane tagged 'fly')",
    "label": "a CD label and 'label points' on a diagram, not a luggage tag",
    "mouse": "all matches are computer mice; the emoji is the animal",
    "pill": "all matches are pill-shaped GUI buttons",
    "seal": "two of three matches are emblems (a state seal, a government seal tag)",
    "turkey": "the flag of Turkey and a turban tagged with the country",
    # the other languages name something else, or something narrower, than the English word
    "bug": "the emoji is a caterpillar: 毛毛虫, Raupe, chenille, гусеница",
    "construction": "the emoji is a road barrier: 路障, Baustellenabsperrung",
    "cooking": "the emoji is a fried egg in a pan: 煎蛋, Spiegelei in Bratpfanne, œuf au plat",
    "kiss": "the emoji is a kissing couple (2人でキス, sich küssendes Paar); the drawing is lips",
    "person": "the other languages say 'adult': 成人, 大人, adulte, взрослый, بالغ",
    "ribbon": "the emoji is a bow (蝴蝶结, pinke Schleife, бантик); the drawing is an awareness ribbon",
    "star": "the emoji is 'white medium star' in de/ar/hi and 'yellow star' in ru",
    "tennis": "the emoji is a tennis ball (Tennisball, pelota de tenis); the drawings are shoes, rackets",
    "wedding": "the emoji is a wedding chapel (iglesia celebrando boda, كنيسة زفاف, विवाह धर्मस्थल)",
    "wheel": "the emoji is a car wheel (Autorad, автомобильное колесо); the matches are an icon, an 'O', a truck",
    # the other languages name the animal's face, not the animal
    "bear": "クマの顔, морда медведя, وجه دب, भालू का चेहरा, 곰 얼굴 ('bear face')",
    "frog": "カエルの顔, голова лягушки, وجه ضفدع, मेंढक का चेहरा, 개구리 얼굴 ('frog face')",
    "robot": "وجه روبوت, रोबोट चेहरा, 로봇 얼굴 ('robot face')",
    "wolf": "オオカミの顔, морда волка, وجه ذئب, सियार का चेहरा, 늑대 얼굴 ('wolf face')",
}
# Title phrases in which a word does not name what is drawn ("Hot Dog" is no dog): a drawing
# whose title holds one is no match for the phrase's words, whatever its keywords say.
NOT_THE_THING = (
    "baseball bat", "cricket bat", "chicken burger", "coat of arms", "cook islands", "fat man",
    "fire engine", "giraffe cichlid", "grain elevator", "hot dog", "ice cream", "isle of man",
    "keyboard key", "little boy", "mountain dulcimer", "mouse scroll", "nodding donkey",
    "prince edward island", "sandwich islands", "watch for",
)
# A word that matches more drawings is a series or too loose a word ("hotel": the "Hotel Icon …" series).
MAX_DRAWINGS_PER_WORD = 30


def one_word_names(emoji_rows: list[dict], names: dict[str, dict[str, dict]]) -> dict[str, dict[str, str]]:
    """English word -> language -> CLDR name, for the emoji whose English name is one word.

    Two-word names ("red apple", "tiger face") are mostly the emoji's own variant of a thing
    and rarely stand in a drawing's title, so they are left out rather than phrase-matched.
    """
    words = {}
    for row in {row["group_id"]: row for row in emoji_rows}.values():
        word = row["caption"].strip().lower()
        if re.fullmatch(r"[a-z]+", word):
            characters = emoji_characters(row["group_id"])
            words[word] = {"en": word} | {language: names[language][characters]["name"] for language in LANGUAGES[1:] if characters in names[language]}
    return words


def whole_word(word: str) -> re.Pattern:
    """The word on its own: "cat" is not in "Catalog"; '_' and '-' count as breaks."""
    return re.compile(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", re.IGNORECASE)


def drawings_by_word(drawings: list[dict], words: list[str]) -> dict[str, list[dict]]:
    """word -> the drawings whose title holds it as a whole word or one of whose keywords is it.

    No plurals or stems ("frogs" is not "frog"), and descriptions are not read: both let in
    more drawings of other things than of the thing.
    """
    patterns = {word: whole_word(word) for word in words}
    matches: dict[str, list[dict]] = {word: [] for word in words}
    for drawing in tqdm(drawings, desc="openclipart-multilingual words", unit="drawing"):
        title = " | ".join({drawing.get("title") or "", drawing.get("caption") or ""} - {""})
        keywords = {keyword.replace("_", " ").strip().lower() for keyword in drawing.get("keywords") or []}
        phrases = [phrase for phrase in NOT_THE_THING if phrase in title.lower()]
        for word in words:
            if any(patterns[word].search(phrase) for phrase in phrases):
                continue
            if word in keywords or patterns[word].search(title):
                matches[word].append(drawing)
    return matches


def word_fate(word: str, drawings: int) -> str:
    if word in EXCLUDED_WORDS:
        return "excluded"
    if not drawings:
        return "no drawing"
    return "too common" if drawings > MAX_DRAWINGS_PER_WORD else "kept"


def dictionary_write(path: Path, words: dict[str, dict[str, str]], matches: dict[str, list[dict]]) -> None:
    """Every one-word name with its translations, its drawings and what became of it: the
    review that EXCLUDED_WORDS came from, to redo for another version of either source."""
    lines = ["\t".join(["word", "drawings", "status", *LANGUAGES[1:], "titles (up to 10)"])]
    for word in sorted(words):
        fate = word_fate(word, len(matches[word]))
        status = {"excluded": f"excluded: {EXCLUDED_WORDS.get(word)}", "too common": f"too common (over {MAX_DRAWINGS_PER_WORD})"}.get(fate, fate)
        titles = " ; ".join(drawing["title"].replace("\t", " ") for drawing in matches[word][:10])
        lines.append("\t".join([word, str(len(matches[word])), status, *(words[word].get(language, "") for language in LANGUAGES[1:]), titles]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def openclipart_multilingual_build(*, emoji_source: Path, openclipart_source: Path, downloads: Path, out: Path) -> dict:
    """One row per (drawing, word) for the one-word emoji names that openclipart drawings show.

    The word is the English caption and group_id; caption_<language> its CLDR names. A
    drawing of several words ("Cat and dog") has a row for each.
    """
    emoji_rows = built_set(emoji_source, needed_by="openclipart-multilingual")
    drawings = built_set(openclipart_source, needed_by="openclipart-multilingual")
    words = one_word_names(emoji_rows, cldr_names(downloads=downloads))
    matches = drawings_by_word(drawings, sorted(words))
    fates = {word: word_fate(word, len(matches[word])) for word in words}
    rows = [
        {"file": drawing["file"], "caption": word, **{f"caption_{language}": name for language, name in words[word].items()},
         **{key: value for key, value in drawing.items() if key not in ("file", "caption")}, "group_id": word}
        for word in sorted(words) if fates[word] == "kept"
        for drawing in matches[word]
    ]
    out.mkdir(parents=True, exist_ok=True)
    made = images_place(source=openclipart_source, out=out, files=sorted({row["file"] for row in rows}))
    manifest_write(out / "data.jsonl", rows)
    dictionary_write(out / "dictionary.tsv", words, matches)
    licences_copy(source=openclipart_source, out=out)
    cldr_licences_write(downloads=downloads, out=out)
    kept = [word for word, fate in fates.items() if fate == "kept"]
    return {
        "images": len(rows), "words": len(kept), "drawings": len({row["file"] for row in rows}), "images_are": made,
        "one_word_names": len(words), "fates": dict(collections.Counter(fates.values())),
        "too_common": {word: len(matches[word]) for word, fate in sorted(fates.items()) if fate == "too common"},
        "named": {language: sum(language in words[word] for word in kept) for language in LANGUAGES},
    }


# ------------------------------------------------------------------ text in pictures

VARIANTS = 3  # pictures per written text
# A drawing may show writing when one of its keywords or a word of its title is one of these…
WRITING_WORDS = frozenset({
    "sign", "signs", "roadsign", "text", "letter", "letters", "alphabet", "abc", "word", "words", "banner",
    "label", "logo", "typography", "lettering", "number", "numbers", "font", "ticket",
})
# …or when its title is written in capitals ("STOP", "WC"); flags are left out, as the
# collection tags every flag "sign". These drawings matched but show no writing, by eye:
NO_WRITING = {
    "a pictogram or symbol": (
        "Aviso", "IO", "yang", "triskel", "Wedding Sign", "Double Arrow Sign", "biohazard", "Biohazard symbol",
        "Disability Sign", "elder sign", "Ampelfrau", "Ampelmaennchen", "high tension danger", "Hot surface danger",
        "Keep Tidy Empty", "Keep Tidy Inside", "Keep Tidy Outside", "No Entrance Sign", "No Smoking", "No smoking sign",
        "Radioactive Sign", "recycle", "danger sign cross 1 pattern", "Bus Symbol (black)",
        "chaussée particulièrementglissante", "Curvy Road Ahead Sign", "No U Turn Sign", "quay sign", "Warning...",
        "Watch For Bicycles Sign", "stop-sign-angled", "Street Sign", "Old Hanging Sign",
    ),
    "an object, a person or a logo without letters": (
        "mascot", "eMule", "PDA 2", "PDA", "RAS", "SIM", "Mountain Seal", "SILVIA", "air", "crystal", "fire",
        "splash", "TV", "TANGRAM", "Kexi", "Paint Roller Banner", "AK47", "M16", "VTT", "Generic TIcket",
    ),
    "letters too small to read at 256 px, or woven into an ornament": (
        "BPOE", "diamante illuminati", "old book", "Font Samples", "nws government website bitmap converted",
        "oh", "Sailboat Illustration with label points",
    ),
}


def may_show_writing(drawing: dict) -> bool:
    keywords = {keyword.strip().lower() for keyword in drawing.get("keywords") or []}
    if keywords & {"flag", "flags"}:
        return False
    title_words = set(re.findall(r"[^\W\d_]+", drawing["title"].lower()))
    return bool((keywords | title_words) & WRITING_WORDS) or re.fullmatch(r"[A-Z0-9][A-Z0-9 ]*", drawing["title"]) is not None


def picture_name(item: Item, variant: int) -> str:
    """'letter-q-1a2b3c-1.png': readable, and unique even where case is not (Q and q differ in the digest)."""
    slug = "_".join(re.findall(r"[a-z0-9]+", item.text.lower())) or "_".join(re.findall(r"[a-z0-9]+", item.captions[0].lower()))
    return f"{item.kind}-{slug}-{hashlib.sha256(item.text.encode()).hexdigest()[:6]}-{variant + 1}.png"


def text_row(item: Item, *, file: str, style: dict) -> dict:
    return {
        "file": file, "caption": item.captions[0], "captions": list(item.captions),
        **({"caption_zh": item.caption_zh} if item.caption_zh else {}),
        "text": item.text, "kind": item.kind, "label": item.kind, "group_id": item.text, "split": split_of(item.text),
        "style": style, "license": "MIT",
    }


def rendered_rows(*, fonts: Path, out: Path) -> list[dict]:
    latin, cjk = faces_in(fonts, LATIN_FACES), faces_in(fonts, CJK_FACES)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for item in tqdm(items(), desc="text-in-pictures pictures", unit="text"):
        faces = faces_for(item, latin=latin, cjk=cjk)
        if not faces:
            raise DatasetError(f"no font draws every character of {item.text!r}; change the text or add a font that does")
        for variant in range(VARIANTS):
            image, style = picture(item, variant, faces)
            file = f"images/{picture_name(item, variant)}"
            image.save(out / file, optimize=True)
            rows.append(text_row(item, file=file, style=style))
    return rows


def font_licences_write(*, fonts: Path, out: Path) -> None:
    """Each font package's Debian copyright file (its licence text), and what covers the pictures."""
    licences = out / "licenses"
    licences.mkdir(parents=True, exist_ok=True)
    for package in FONT_PACKAGES:
        shutil.copyfile(fonts.parent / "doc" / package / "copyright", licences / f"{package}-copyright")
    (licences / "README.txt").write_text(
        "The rendered pictures (kind letter, digit, sign, word, phrase, chinese) are drawn by Glimpse's\n"
        "bench/datasets.py and are MIT-licensed like Glimpse. They use the fonts whose licences are here:\n"
        "DejaVu (Bitstream Vera licence, DejaVu changes public domain), Liberation 2 and Noto CJK (SIL OFL 1.1).\n"
        "The openclipart drawings are public domain, as the openclipart set's COPYRIGHT says.\n",
        encoding="utf-8",
    )


def text_in_pictures_build(*, fonts: Path, openclipart_source: Path, out: Path) -> dict:
    """Rendered writing (letters, digits, signs, words, phrases, Chinese words), VARIANTS
    pictures of each, and the openclipart drawings that show writing, as a confirmation
    drawn by people: those are all split 'confirm'."""
    drawings = built_set(openclipart_source, needed_by="text-in-pictures")
    excluded = {title for titles in NO_WRITING.values() for title in titles}
    candidates = [drawing for drawing in drawings if may_show_writing(drawing)]
    chosen = [drawing for drawing in candidates if drawing["title"] not in excluded]
    rows = rendered_rows(fonts=fonts, out=out)
    rows += [
        {**drawing, "captions": [drawing["title"]], "kind": "openclipart", "label": "openclipart", "group_id": drawing["title"], "split": "confirm"}
        for drawing in chosen
    ]
    made = images_place(source=openclipart_source, out=out, files=[drawing["file"] for drawing in chosen])
    manifest_write(out / "data.jsonl", rows)
    for split in ("tune", "confirm"):  # evaluate_retrieval --manifest data.tune.jsonl: one half alone
        manifest_write(out / f"data.{split}.jsonl", [row for row in rows if row["split"] == split])
    licences_copy(source=openclipart_source, out=out)
    font_licences_write(fonts=fonts, out=out)
    per_text = {(row["kind"], row["group_id"]): row for row in rows}.values()
    return {
        "images": len(rows), "texts": len(per_text), "variants": VARIANTS, "openclipart_images_are": made,
        "texts_by_kind_and_split": {kind: dict(collections.Counter(row["split"] for row in per_text if row["kind"] == kind)) for kind in dict.fromkeys(row["kind"] for row in rows)},
        "openclipart": {"matched": len(candidates), "no_writing": len(candidates) - len(chosen), "kept": len(chosen)},
        "reviewed_titles_not_matched": sorted(excluded - {drawing["title"] for drawing in candidates}),
    }


def manifest_write(path: Path, rows: list[dict]) -> None:
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    partial.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(".glimpse/data"), help="where the sets go (default .glimpse/data)")
    parser.add_argument("--only", choices=SETS, help="build one set")
    parser.add_argument(
        "--from", dest="sources", type=Path, metavar="FOLDER",
        help="the folder holding the built emoji and openclipart sets that the multilingual sets and text-in-pictures are made from (default: --data)",
    )
    parser.add_argument("--workers", type=int, default=max(1, min(4, multiprocessing.cpu_count())), help="processes decoding openclipart")
    options = parser.parse_args()
    downloads, sources = options.data / "downloads", options.sources or options.data
    wanted = [name for name in SETS if options.only in (None, name)]
    try:
        if "openclipart" in wanted:
            summary = openclipart_build(share=debian_unpacked(downloads=downloads), out=options.data / "openclipart", workers=options.workers)
            print("openclipart:", json.dumps(summary))
        if "emoji" in wanted:
            summary = emoji_build(modules=npm_unpacked(downloads=downloads), out=options.data / "emoji")
            print("emoji:", json.dumps(summary))
        if "emoji-multilingual" in wanted:
            summary = emoji_multilingual_build(source=sources / "emoji", downloads=downloads, out=options.data / "emoji-multilingual")
            print("emoji-multilingual:", json.dumps(summary, ensure_ascii=False))
        if "openclipart-multilingual" in wanted:
            summary = openclipart_multilingual_build(
                emoji_source=sources / "emoji", openclipart_source=sources / "openclipart", downloads=downloads, out=options.data / "openclipart-multilingual"
            )
            print("openclipart-multilingual:", json.dumps(summary, ensure_ascii=False))
        if "text-in-pictures" in wanted:
            summary = text_in_pictures_build(fonts=fonts_unpacked(downloads=downloads), openclipart_source=sources / "openclipart", out=options.data / "text-in-pictures")
            print("text-in-pictures:", json.dumps(summary, ensure_ascii=False))
    except DatasetError as error:
        print(f"datasets: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
