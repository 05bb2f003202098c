"""Query texts' vectors, kept per process, so repeated and paginated searches do not encode again.

An in-process LRU, not Django's cache framework: an entry is a few 384-d float32 rows
(5 KB) wanted within a millisecond of the request starting; a Redis cache would add a
network round trip and pickling to every search, and the configured Redis is the job
queue's. Each web process warms its own copy within seconds of traffic, and a bounded
entry count bounds its memory (QUERY_CACHE_SIZE × 5 KB ≈ 5 MB).
"""
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from embeddings import encoders
from embeddings.models import ModelVersion
from embeddings.selectors import version_base
from embeddings.spaces import space_for

QUERY_CACHE_SIZE = 1024


@dataclass(frozen=True)
class QueryVectors:
    """A query text in the spaces a version ranks by. `english` weighs the English tower's
    lists (embeddings/encoders/english.py): 1 for an English query, 0 for one the English
    tower cannot read, whose English vectors are then not computed (None)."""

    raw: np.ndarray | None  # the English tower's own vector: finds close judged queries
    vector: np.ndarray | None  # in the version's English space (raw, or through its heads)
    multilingual: np.ndarray | None = None  # the multilingual tower's, for a version that has it
    english: float = 1.0


class QueryVectorCache:
    """QueryVectors by query text, for one model version at a time: the first lookup for
    another version (a release or a rollback) empties it, so a switch never serves the old
    space's vectors."""

    def __init__(self, *, size: int):
        self.size = size
        self.version_id: int | None = None
        self.entries: OrderedDict[str, QueryVectors] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, *, version_id: int, text: str) -> QueryVectors | None:
        with self.lock:
            if version_id != self.version_id:
                self.entries.clear()
                self.version_id = version_id
            found = self.entries.get(text)
            if found is None:
                self.misses += 1
                return None
            self.entries.move_to_end(text)
            self.hits += 1
            return found

    def put(self, *, version_id: int, text: str, vectors: QueryVectors) -> None:
        with self.lock:
            if version_id != self.version_id:
                return  # another version took over while this one was encoding
            self.entries[text] = vectors
            self.entries.move_to_end(text)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.version_id = None
            self.hits = self.misses = 0


CACHE = QueryVectorCache(size=QUERY_CACHE_SIZE)


def query_text_vectors(*, text: str, version: ModelVersion) -> QueryVectors:
    """A query text's vectors for ranking in `version`.

    Keyed by the text with its whitespace collapsed, not lower-cased: a cased text model
    gives "Apple" and "apple" different vectors."""
    key = " ".join(text.split())
    found = CACHE.get(version_id=version.id, text=key)
    if found is not None:
        return found
    english = encoders.query_englishness(key) if version.multilingual else 1.0
    # One after the other: each runtime already keeps every core busy (encoding the two on
    # two threads measured slower).
    raw = encoders.query_encoder().encode([key])[0] if english > 0 else None
    vectors = QueryVectors(
        raw=raw,
        vector=None if raw is None else space_for(version).texts_from_base(raw[None, :])[0],
        multilingual=encoders.multilingual_query_encoder().encode([key])[0] if version.multilingual else None,
        english=english,
    )
    CACHE.put(version_id=version.id, text=key, vectors=vectors)
    return vectors


def query_texts_vectors(*, texts: list[str], version: ModelVersion) -> list[QueryVectors]:
    """query_text_vectors for many texts at once, in batches and uncached (evaluations, gates)."""
    english = [encoders.query_englishness(text) if version.multilingual else 1.0 for text in texts]
    base = space_for(version_base())
    read = [index for index, weight in enumerate(english) if weight > 0]
    raw = dict(zip(read, base.embed_texts([texts[index] for index in read]))) if read else {}
    served = dict(zip(read, space_for(version).texts_from_base(np.stack([raw[index] for index in read])))) if read else {}
    multilingual = base.embed_multilingual_texts(texts) if version.multilingual and texts else [None] * len(texts)
    return [
        QueryVectors(raw=raw.get(index), vector=served.get(index), multilingual=multilingual[index], english=english[index])
        for index in range(len(texts))
    ]
