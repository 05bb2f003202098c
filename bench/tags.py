"""Clean words from a collection's raw keywords (used where datasets are built).

Artists' keywords mix real tags with junk: tool output (`hash(0x8589f20)`), numbers,
broken encodings, and words glued together (`tigerorangegreenvector`). A tag is kept
when every word in it is letters (a hyphen or apostrophe inside is fine). A long tag
that is no word of the collection is split into words of the collection when it can be
split entirely; when it cannot, it is kept if short enough to be a rare real word and
dropped otherwise. The vocabulary comes from the collection's titles, descriptions,
categories and multi-word keywords, never from one-word keywords, which are what is
being judged.
"""
import re
from collections.abc import Iterable

WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")
LETTERS = re.compile(r"[^\W\d_]+")
# Unknown one-word tags this long are tried as glued words; past the second length they
# are taken to be glued even when they cannot be split, and dropped.
GLUED_FROM, GLUED_SURELY_FROM = 12, 16
MIN_PART = 3
# Words an export tool added to a whole collection's keywords, not the artists': openclipart
# tags 190 drawings of every subject with "hash" (beside the `hash(0x…)` ones).
TOOL_WORDS = frozenset({"hash"})


def words_of(text: str) -> list[str]:
    return [word.lower() for word in LETTERS.findall(text)]


def vocabulary_from(*, texts: Iterable[str], keywords: Iterable[str]) -> set[str]:
    """Words of the collection's prose, plus the words of keywords that are several words."""
    vocabulary = {word for text in texts for word in words_of(text)}
    vocabulary.update(word for keyword in keywords if len(words_of(keyword)) > 1 for word in words_of(keyword))
    return vocabulary


def glued_split(tag: str, vocabulary: set[str]) -> list[str] | None:
    """`tag` as the fewest words of `vocabulary` (each at least MIN_PART letters), or None."""
    best: list[list[str] | None] = [[]] + [None] * len(tag)
    for end in range(MIN_PART, len(tag) + 1):
        for start in range(0, end - MIN_PART + 1):
            if best[start] is not None and tag[start:end] in vocabulary:
                candidate = best[start] + [tag[start:end]]
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
    parts = best[len(tag)]
    return parts if parts and len(parts) > 1 else None


def tags_clean(keywords: Iterable[str], *, vocabulary: set[str]) -> list[str]:
    """Clean, lower-case, de-duplicated tags in their first order."""
    tags: list[str] = []
    for keyword in keywords:
        tag = " ".join(keyword.replace("_", " ").lower().split())
        if not tag or tag in TOOL_WORDS or not tag.isprintable() or not all(WORD.fullmatch(word) for word in tag.split(" ")):
            continue
        cleaned = [tag]
        if LETTERS.fullmatch(tag) and len(tag) >= GLUED_FROM and tag not in vocabulary:
            parts = glued_split(tag, vocabulary)
            if parts:
                cleaned = parts
            elif len(tag) >= GLUED_SURELY_FROM:
                continue
        tags.extend(word for word in cleaned if word not in tags)
    return tags
