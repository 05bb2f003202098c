"""How English a query looks, to weigh the English text tower's lists against the
multilingual tower's.

The English tower (all-MiniLM-L6-v2) is the better one for English (it keeps English at
least as good as before, measured in docs/multilingual.md), and gives noise for words it
has never seen; the multilingual tower serves every language. A query's Englishness is the
share of its words that are whole words of the English tower's vocabulary: "a red apple"
is 1, "Katze" and "猫" are 0, "Tiger" (German and English alike) is 1, and that is right,
since the English tower then ranks what the word means in English.
"""
import functools
import json
import re
import unicodedata
from pathlib import Path

WORD = re.compile(r"[^\W\d_]+")


@functools.cache
def vocabulary(location: str) -> frozenset[str]:
    """The whole words (not ##pieces) of a WordPiece tokenizer.json; empty for other tokenizers."""
    path = Path(location, "tokenizer.json")
    if not path.exists():
        return frozenset()
    model = json.loads(path.read_text(encoding="utf-8")).get("model", {})
    if model.get("type") != "WordPiece":
        return frozenset()
    return frozenset(token for token in model.get("vocab", {}) if token.isascii() and token.isalpha())


def englishness(text: str, *, words: frozenset[str]) -> float:
    """Share of `text`'s words found in `words` (1.0 for a text without words, such as "42").
    Without a vocabulary to look in, ASCII letters count as English."""
    found = WORD.findall(unicodedata.normalize("NFKC", text).lower())
    if not found:
        return 1.0
    return sum((word in words) if words else word.isascii() for word in found) / len(found)
