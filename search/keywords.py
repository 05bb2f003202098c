"""A query's words as the keyword lists read them (search/ranking.py)."""
import re
from dataclasses import dataclass

WORDS = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class KeywordQuery:
    """Websearch syntax split into words and "phrases" any of which may match, and exclusions."""

    terms: tuple[str, ...]
    excluded: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "KeywordQuery":
        terms, excluded = [], []
        for minus, phrase, word in WORDS.findall(text):
            word = word.replace('"', "")  # a stray quote inside a word would open a phrase below
            if phrase.strip():
                (excluded if minus else terms).append(f'"{phrase.strip()}"')
            elif word.startswith("-") and len(word) > 1:
                excluded.append(word[1:])
            elif word and word.lower() != "or" and word != "-":
                terms.append(word)
        return cls(terms=tuple(terms), excluded=tuple(excluded))

    def params(self) -> list:
        """the terms, any of which may match, and the exclusions, none of which may"""
        return [list(self.terms), list(self.excluded)]
