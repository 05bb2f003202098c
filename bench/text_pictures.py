"""What the text-in-pictures set writes, and how each picture of it is drawn.

The items are fixed lists below, each with the English phrasings a person would search
for it by (`captions`, the first is the row's caption). A picture is drawn from the item
and its variant number alone: every choice comes from a random generator seeded with
both, so a rebuild with the same fonts gives the same pixels.
"""
import colorsys
import functools
import random
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIDE = 256  # pictures are SIDE × SIDE RGB
MARGIN = 6  # px of background kept around the writing, so nothing is clipped
SIZE_SHARE = (0.15, 0.80)  # the writing's longer side spans this share of the picture…
MIN_FONT_PX = 18  # …but never a font smaller than this: a long word at 15 % would be unreadable dots
ROTATED_SHARE = 0.4  # pictures whose writing is turned, by ±ROTATION degrees: less would not look turned
ROTATION = (3, 30)
MAX_OUTLINE_PX = 6  # the halo of writing on a busy background; wider would read as a plate
FRAMED_SHARE = 0.3  # pictures whose writing stands on a sign-like plate
BACKGROUNDS = ("plain light", "plain dark", "gradient", "busy shapes", "busy noise")
MISSING_GLYPH = chr(0x10FFFD)  # a private-use code point no font draws: what a missing glyph looks like


@dataclass(frozen=True)
class Item:
    text: str  # exactly what is written
    kind: str
    captions: tuple[str, ...]  # English phrasings, the first is the row's caption
    caption_zh: str | None = None


@dataclass(frozen=True)
class Face:
    name: str  # "DejaVu Sans Bold"
    path: Path
    index: int = 0  # the face inside a .ttc collection


# ------------------------------------------------------------------ items

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# sign -> (English phrasings, Chinese name or None where no short one is in common use)
SIGNS = {
    "$": (("dollar sign", "dollar", "the dollar symbol", "$"), "美元符号"),
    "€": (("euro", "euro sign", "the euro symbol", "€"), "欧元符号"),
    "£": (("pound sign", "pound sterling", "the pound symbol", "£"), "英镑符号"),
    "¥": (("yen sign", "yen", "the yuan sign", "¥"), "日元符号"),
    "₹": (("rupee sign", "Indian rupee", "the rupee symbol", "₹"), "卢比符号"),
    "₩": (("won sign", "Korean won", "the won symbol", "₩"), "韩元符号"),
    "¢": (("cent sign", "cent", "the cent symbol", "¢"), "美分符号"),
    "%": (("percent sign", "percent", "the percentage symbol", "%"), "百分号"),
    "&": (("ampersand", "and sign", "the ampersand symbol", "&"), None),
    "@": (("at sign", "at symbol", "the @ symbol", "@"), None),
    "#": (("hash sign", "hashtag", "number sign", "#"), "井号"),
    "?": (("question mark", "a question mark sign", "the question symbol", "?"), "问号"),
    "!": (("exclamation mark", "exclamation point", "the exclamation symbol", "!"), "感叹号"),
    "+": (("plus sign", "plus", "the plus symbol", "+"), "加号"),
    "=": (("equals sign", "equal sign", "the equals symbol", "="), "等号"),
    "©": (("copyright sign", "copyright", "the copyright symbol", "©"), "版权符号"),
}

# Words seen on shop fronts, doors and roads, written in capitals as signs are.
SIGN_WORDS = (
    "SALE", "OPEN", "CLOSED", "EXIT", "STOP", "HOTEL", "TAXI", "PUSH", "PULL", "PARKING",
    "POLICE", "PHARMACY", "WARNING", "DANGER", "CAFE", "BAR", "PIZZA", "MENU", "INFO", "FREE",
    "TICKETS", "ARRIVALS", "DEPARTURES", "GATE", "OFFICE", "PRIVATE", "RESERVED", "MUSEUM",
    "LIBRARY", "CINEMA", "MARKET", "BAKERY", "GARAGE", "LOBBY", "SHOP",
)
# Common nouns, verbs and adjectives; none is the English meaning of a Chinese word below,
# so that a query for one kind is not answered by a picture of the other.
COMMON_WORDS = (
    # nouns (78)
    "garden", "kitchen", "window", "door", "table", "chair", "bottle", "cup", "knife", "spoon",
    "key", "lamp", "clock", "camera", "guitar", "piano", "music", "radio", "paper", "pencil",
    "map", "box", "bag", "shoe", "hat", "shirt", "coat", "gold", "stone", "beach",
    "island", "ocean", "forest", "road", "street", "bridge", "tower", "castle", "church", "city",
    "farm", "world", "sky", "cloud", "wind", "storm", "winter", "summer", "night", "game",
    "ball", "team", "gift", "party", "song", "photo", "king", "queen", "baby", "family",
    "heart", "hand", "dream", "idea", "peace", "hope", "lemon", "orange", "tomato", "cheese",
    "soup", "rabbit", "mouse", "lion", "duck", "sheep", "frog", "snake",
    # verbs (19)
    "run", "jump", "walk", "swim", "read", "write", "sing", "eat", "drink", "sleep",
    "play", "think", "listen", "laugh", "cook", "build", "drive", "wait", "help",
    # adjectives (18)
    "fast", "slow", "happy", "sad", "funny", "strong", "soft", "sweet", "fresh", "clean",
    "empty", "old", "warm", "wild", "lucky", "dark", "blue", "green",
)

# Number plates (UK, US, German) and the price, time and code shapes that signs carry.
PLATES = ("RE16 TGK", "KX70 BFD", "LD19 XZP", "7ABC123", "M AB 1234")
PHRASES = {
    "A4 PAPER": None, "NO PARKING": None, "KEEP OUT": None, "WET PAINT": None, "ONE WAY": None,
    "BUS STOP": None, "FIRE EXIT": None, "SOLD OUT": None, "NO ENTRY": None, "STAFF ONLY": None,
    "GOOD LUCK": None, "HAPPY HOUR": None, "LOST AND FOUND": None, "ROOM 101": None,
    "GATE B12": None, "PLATFORM 9": None, "SOS": None, "WIFI": None, "USB": None,
    "2024": ("2024", "the year 2024", "the number 2024"),
    "1999": ("1999", "the year 1999", "the number 1999"),
    "12:30": ("12:30", "the time 12:30", "half past twelve"),
    "50% OFF": ("50% off", "a sign saying 50% OFF", "half price"),
    "£9.99": ("£9.99", "the price £9.99", "nine pounds ninety-nine"),
    "$5": ("5 dollars", "the price $5", "$5"),
    "€20": ("20 euros", "the price €20", "€20"),
    "24/7": ("24/7", "open 24/7", "twenty-four seven"),
    "H2O": ("h2o", "the formula H2O", "H2O"),
    "100 km/h": ("100 km/h", "speed limit 100 km/h", "a hundred kilometres per hour"),
}  # None: the plain phrasings of phrase_captions()

# Chinese word -> its English meaning, the caption a person searching in English would type.
CHINESE_WORDS = {
    "猫": "cat", "狗": "dog", "鱼": "fish", "鸟": "bird", "马": "horse", "熊猫": "panda", "老虎": "tiger",
    "苹果": "apple", "香蕉": "banana", "米饭": "rice", "面条": "noodles", "面包": "bread", "鸡蛋": "egg", "牛奶": "milk",
    "茶": "tea", "咖啡": "coffee", "蛋糕": "cake", "水": "water", "火": "fire", "山": "mountain", "太阳": "sun",
    "月亮": "moon", "雨": "rain", "雪": "snow", "花": "flower", "树": "tree", "书": "book", "汽车": "car",
    "飞机": "airplane", "火车": "train", "自行车": "bicycle", "电话": "telephone", "电脑": "computer",
    "手机": "mobile phone", "学校": "school", "医院": "hospital", "银行": "bank", "超市": "supermarket",
    "餐厅": "restaurant", "厕所": "toilet", "入口": "entrance", "出口": "exit", "禁止吸烟": "no smoking",
    "欢迎光临": "welcome", "小心地滑": "slippery floor", "紧急出口": "emergency exit", "北京": "Beijing", "上海": "Shanghai",
    "中国": "China", "长城": "the Great Wall", "你好": "hello", "谢谢": "thank you", "生日快乐": "happy birthday",
    "新年快乐": "happy new year", "朋友": "friend", "爱": "love", "家": "home", "妈妈": "mother", "医生": "doctor",
    "大": "big", "小": "small", "红色": "red",
}
# Captions two items may share, because a person asking for it wants either picture.
SHARED_CAPTIONS = {"exit": ("EXIT", "出口")}


def word_captions(word: str) -> tuple[str, ...]:
    return (word.lower(), f"the word {word}", f"a sign saying {word}")


def phrase_captions(phrase: str) -> tuple[str, ...]:
    if phrase in PLATES:
        return (f"number plate {phrase}", f"licence plate {phrase}", phrase)
    return PHRASES.get(phrase) or (phrase.lower(), f"the text {phrase}", f"a sign saying {phrase}")


def chinese_captions(meaning: str) -> tuple[str, ...]:
    return (meaning, f"{meaning} in Chinese", f"the Chinese characters for {meaning}")


def items() -> list[Item]:
    """Every item, in a fixed order; raises ValueError if two items share a phrasing that
    SHARED_CAPTIONS does not allow, since the evaluation counts a query's answers by its text."""
    made = [Item(letter, "letter", (f"the letter {letter}", f"capital {letter}", f"uppercase {letter}"), f"字母{letter}") for letter in string.ascii_uppercase]
    made += [Item(letter, "letter", (f"the letter {letter}", f"small {letter}", f"lowercase {letter}"), f"字母{letter}") for letter in string.ascii_lowercase]
    made += [Item(str(digit), "digit", (f"number {digit}", name, f"the digit {digit}"), f"数字{digit}") for digit, name in enumerate(DIGIT_NAMES)]
    made += [Item(sign, "sign", captions, zh) for sign, (captions, zh) in SIGNS.items()]
    made += [Item(word, "word", word_captions(word)) for word in SIGN_WORDS + COMMON_WORDS]
    made += [Item(phrase, "phrase", phrase_captions(phrase)) for phrase in PLATES + tuple(PHRASES)]
    made += [Item(word, "chinese", chinese_captions(meaning), word) for word, meaning in CHINESE_WORDS.items()]
    owners: dict[str, set[str]] = {}
    for item in made:
        for caption in item.captions:
            owners.setdefault(caption, set()).add(item.text)
    clashes = {caption: texts for caption, texts in owners.items() if len(texts) > 1 and texts != set(SHARED_CAPTIONS.get(caption, ()))}
    if clashes:
        raise ValueError(f"phrasings shared by several items: {clashes}")
    return made


# ------------------------------------------------------------------ fonts

# (name, file under usr/share/fonts of the Debian font packages, face in a .ttc)
LATIN_FACES = (
    ("DejaVu Sans", "truetype/dejavu/DejaVuSans.ttf", 0),
    ("DejaVu Sans Bold", "truetype/dejavu/DejaVuSans-Bold.ttf", 0),
    ("DejaVu Sans Oblique", "truetype/dejavu/DejaVuSans-Oblique.ttf", 0),
    ("DejaVu Sans Bold Oblique", "truetype/dejavu/DejaVuSans-BoldOblique.ttf", 0),
    ("DejaVu Sans Condensed Bold", "truetype/dejavu/DejaVuSansCondensed-Bold.ttf", 0),
    ("DejaVu Serif", "truetype/dejavu/DejaVuSerif.ttf", 0),
    ("DejaVu Serif Bold", "truetype/dejavu/DejaVuSerif-Bold.ttf", 0),
    ("DejaVu Serif Italic", "truetype/dejavu/DejaVuSerif-Italic.ttf", 0),
    ("DejaVu Sans Mono", "truetype/dejavu/DejaVuSansMono.ttf", 0),
    ("DejaVu Sans Mono Bold", "truetype/dejavu/DejaVuSansMono-Bold.ttf", 0),
    ("Liberation Sans", "truetype/liberation2/LiberationSans-Regular.ttf", 0),
    ("Liberation Sans Bold", "truetype/liberation2/LiberationSans-Bold.ttf", 0),
    ("Liberation Sans Italic", "truetype/liberation2/LiberationSans-Italic.ttf", 0),
    ("Liberation Sans Bold Italic", "truetype/liberation2/LiberationSans-BoldItalic.ttf", 0),
    ("Liberation Serif", "truetype/liberation2/LiberationSerif-Regular.ttf", 0),
    ("Liberation Serif Bold", "truetype/liberation2/LiberationSerif-Bold.ttf", 0),
    ("Liberation Serif Italic", "truetype/liberation2/LiberationSerif-Italic.ttf", 0),
    ("Liberation Mono", "truetype/liberation2/LiberationMono-Regular.ttf", 0),
    ("Liberation Mono Bold", "truetype/liberation2/LiberationMono-Bold.ttf", 0),
)
# The collections hold Japanese, Korean, Simplified and Traditional Chinese faces; 2 is Simplified.
CJK_FACES = (
    ("Noto Sans CJK SC", "opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("Noto Sans CJK SC Bold", "opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("Noto Serif CJK SC", "opentype/noto/NotoSerifCJK-Regular.ttc", 2),
    ("Noto Serif CJK SC Bold", "opentype/noto/NotoSerifCJK-Bold.ttc", 2),
)


def faces_in(fonts: Path, listed: tuple[tuple[str, str, int], ...]) -> list[Face]:
    return [Face(name, fonts / relative, index) for name, relative, index in listed]


@functools.lru_cache(maxsize=64)  # each size is a font object with its file open
def font(face: Face, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(face.path), size, index=face.index)


def draws(face: Face, text: str) -> bool:
    """Whether the face has a glyph for every character: a missing one would be drawn as an empty box."""
    probe = font(face, 48)
    missing = probe.getmask(MISSING_GLYPH)
    for character in set(text) - {" "}:
        mask = probe.getmask(character)
        if mask.size == missing.size and bytes(mask) == bytes(missing):
            return False
    return True


def faces_for(item: Item, *, latin: list[Face], cjk: list[Face]) -> list[Face]:
    return [face for face in (cjk if item.kind == "chinese" else latin) if draws(face, item.text)]


# ------------------------------------------------------------------ colours and backgrounds


def colour(rng: random.Random, lightness: tuple[float, float], saturation: tuple[float, float] = (0.0, 0.8)) -> tuple[int, int, int]:
    red, green, blue = colorsys.hls_to_rgb(rng.random(), rng.uniform(*lightness), rng.uniform(*saturation))
    return round(red * 255), round(green * 255), round(blue * 255)


def background_colour(rng: random.Random, light: bool) -> tuple[int, int, int]:
    return colour(rng, (0.80, 0.96) if light else (0.06, 0.24))


def ink_colour(rng: random.Random, *, on_light: bool) -> tuple[int, int, int]:
    """Dark ink on light ground and light on dark, so that the writing always stands out;
    plain black or white a third of the time, as most real writing is."""
    if rng.random() < 1 / 3:
        return (0, 0, 0) if on_light else (255, 255, 255)
    return colour(rng, (0.05, 0.32) if on_light else (0.75, 0.97), (0.3, 1.0))


def gradient(rng: random.Random, light: bool) -> Image.Image:
    start, end = np.array(background_colour(rng, light), float), np.array(background_colour(rng, light), float)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:SIDE, 0:SIDE] - (SIDE - 1) / 2
    along = xs * np.cos(angle) + ys * np.sin(angle)
    share = (along - along.min()) / (along.max() - along.min())
    return Image.fromarray((start + (end - start) * share[..., None]).round().astype(np.uint8))


def busy_shapes(rng: random.Random, light: bool) -> Image.Image:
    """A ground of the given lightness strewn with shapes of any colour, as clutter behind a sign."""
    image = Image.new("RGB", (SIDE, SIDE), background_colour(rng, light))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(20, 45)):
        x, y = rng.randint(-40, SIDE), rng.randint(-40, SIDE)
        box = (x, y, x + rng.randint(10, 90), y + rng.randint(10, 90))
        fill = colour(rng, (0.15, 0.9))
        shape = rng.choice(("ellipse", "rectangle", "line", "triangle"))
        if shape == "ellipse":
            draw.ellipse(box, fill=fill)
        elif shape == "rectangle":
            draw.rectangle(box, fill=fill)
        elif shape == "line":
            draw.line(box, fill=fill, width=rng.randint(2, 8))
        else:
            draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=fill)
    return image


def busy_noise(rng: random.Random, light: bool) -> Image.Image:
    """Blotches (coarse noise, smoothly enlarged) with grain on top, around a ground colour."""
    generator = np.random.default_rng(rng.getrandbits(64))
    coarse = Image.fromarray(generator.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((SIDE, SIDE), Image.BICUBIC)
    blotches = (np.asarray(coarse, float) - 128) / 128
    grain = generator.normal(0, 22, (SIDE, SIDE, 3))
    pixels = np.array(background_colour(rng, light), float) + 70 * blotches + grain
    return Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8))


def background(kind: str, rng: random.Random) -> tuple[Image.Image, bool]:
    """The background picture and whether it is light (which decides the ink)."""
    light = kind != "plain dark" and (kind == "plain light" or rng.random() < 0.6)
    if kind.startswith("plain"):
        return Image.new("RGB", (SIDE, SIDE), background_colour(rng, light)), light
    if kind == "gradient":
        return gradient(rng, light), light
    return (busy_shapes if kind == "busy shapes" else busy_noise)(rng, light), light


# ------------------------------------------------------------------ the writing

# Sign plates: (plate, ink), the colour pairs of real signs.
SIGN_COLOURS = (
    ((200, 16, 46), (255, 255, 255)), ((0, 122, 61), (255, 255, 255)), ((0, 70, 160), (255, 255, 255)),
    ((255, 205, 0), (0, 0, 0)), ((255, 255, 255), (0, 0, 0)), ((25, 25, 25), (255, 215, 0)), ((120, 72, 32), (255, 240, 205)),
)


def font_size(face: Face, text: str, share: float) -> int:
    """The size at which the writing's longer side spans `share` of the picture, at least MIN_FONT_PX."""
    left, top, right, bottom = font(face, 100).getbbox(text)
    return max(MIN_FONT_PX, round(share * SIDE * 100 / max(right - left, bottom - top)))


def writing(text: str, face: Face, size: int, *, ink, outline, plate) -> Image.Image:
    """The writing alone on a transparent layer: ink, an outline of `outline` colour if given,
    and under it a sign plate with a border in the ink's colour if `plate` is given.

    The colour under transparent pixels is the writing's own, so that rotating and
    shrinking the layer blends no black into the letters' edges.
    """
    typeface = font(face, size)
    stroke = min(MAX_OUTLINE_PX, max(1, round(size / 14))) if outline else 0
    left, top, right, bottom = typeface.getbbox(text, stroke_width=stroke)
    border = max(2, round(size / 16))  # the plate's inner line, drawn `border` px inside its edge
    pad_x, pad_y = (round(size * 0.35) + 2 * border, round(size * 0.2) + 2 * border) if plate else (2, 2)
    layer_size = (right - left + 2 * pad_x, bottom - top + 2 * pad_y)
    origin = (pad_x - left, pad_y - top)
    pixels = Image.new("RGB", layer_size, plate or outline or ink)
    alpha = Image.new("L", layer_size, 0)
    if plate:
        radius = round(size * 0.15)
        ImageDraw.Draw(alpha).rounded_rectangle((0, 0, layer_size[0] - 1, layer_size[1] - 1), radius=radius, fill=255)
        ImageDraw.Draw(pixels).rounded_rectangle((border, border, layer_size[0] - 1 - border, layer_size[1] - 1 - border), radius=radius, outline=ink, width=border)
    if outline:
        outline_mask = Image.new("L", layer_size, 0)
        ImageDraw.Draw(outline_mask).text(origin, text, font=typeface, fill=255, stroke_width=stroke, stroke_fill=255)
        pixels.paste(outline, mask=outline_mask)
        alpha.paste(255, mask=outline_mask)
    ink_mask = Image.new("L", layer_size, 0)
    ImageDraw.Draw(ink_mask).text(origin, text, font=typeface, fill=255)
    pixels.paste(ink, mask=ink_mask)
    alpha.paste(255, mask=ink_mask)
    layer = pixels.convert("RGBA")
    layer.putalpha(alpha)
    return layer


def fitted(layer: Image.Image, angle: float) -> tuple[Image.Image, float]:
    """The layer turned by `angle`, cropped to what it shows, and shrunk if it would not fit
    inside the margins; returns it and the shrink factor (1 where it fitted)."""
    if angle:
        base = layer.getpixel((0, 0))[:3]
        layer = layer.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(*base, 0))
    layer = layer.crop(layer.getchannel("A").getbbox())
    room = SIDE - 2 * MARGIN
    scale = min(1.0, room / layer.width, room / layer.height)
    if scale < 1:
        layer = layer.resize((max(1, int(layer.width * scale)), max(1, int(layer.height * scale))), Image.LANCZOS)
    return layer, scale


def picture(item: Item, variant: int, faces: list[Face]) -> tuple[Image.Image, dict]:
    """Variant `variant` of the item's picture and a summary of how it was drawn.

    The variants of one item take different faces and different backgrounds (each item
    shuffles both lists with its own seed); size, colours, turn and plate are drawn
    per picture. String seeds are hashed with SHA-512, the same on every machine.
    """
    per_item = random.Random(f"{item.kind}|{item.text}")
    face = per_item.sample(faces, len(faces))[variant % len(faces)]
    kind = per_item.sample(BACKGROUNDS, len(BACKGROUNDS))[variant % len(BACKGROUNDS)]
    rng = random.Random(f"{item.kind}|{item.text}|{variant}")
    image, light = background(kind, rng)
    size = font_size(face, item.text, rng.uniform(*SIZE_SHARE))
    angle = round(rng.choice((-1, 1)) * rng.uniform(*ROTATION), 1) if rng.random() < ROTATED_SHARE else 0.0
    framed = rng.random() < FRAMED_SHARE
    if framed:
        plate, ink = rng.choice(SIGN_COLOURS)
        layer = writing(item.text, face, size, ink=ink, outline=None, plate=plate)
    else:
        ink = ink_colour(rng, on_light=light)
        outline = background_colour(rng, light) if kind.startswith("busy") else None  # a halo keeps clutter off the strokes
        layer = writing(item.text, face, size, ink=ink, outline=outline, plate=None)
    layer, scale = fitted(layer, angle)
    position = (rng.randint(MARGIN, SIDE - MARGIN - layer.width), rng.randint(MARGIN, SIDE - MARGIN - layer.height))
    canvas = image.convert("RGBA")
    canvas.alpha_composite(layer, position)
    style = {"font": face.name, "size": round(size * scale), "background": kind, "rotation": angle, "frame": framed}
    return canvas.convert("RGB"), style
