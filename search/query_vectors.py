"""Query texts' vectors, kept per process, so repeated and paginated searches do not encode again.

An in-process LRU, not Django's cache framework: an entry is two 384-d float32 rows
(3 KB) wanted within a millisecond of the request starting; a Redis cache would add a
network round trip and pickling to every search, and the configured Redis is the job
queue's. Each web process warms its own copy within seconds of traffic, and a bounded
entry count bounds its memory (QUERY_CACHE_SIZE × 3 KB ≈ 3 MB).
"""
import threading
from collections import OrderedDict

import numpy as np

from embeddings.models import ModelVersion
from embeddings.selectors import version_base
from embeddings.spaces import space_for

QUERY_CACHE_SIZE = 1024


class QueryVectorCache:
    """(text-tower vector, vector in the version's space) by query text, for one model
    version at a time: the first lookup for another version (a release or a rollback)
    empties it, so a switch never serves the old space's vectors."""

    def __init__(self, *, size: int):
        self.size = size
        self.version_id: int | None = None
        self.entries: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, *, version_id: int, text: str) -> tuple[np.ndarray, np.ndarray] | None:
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

    def put(self, *, version_id: int, text: str, vectors: tuple[np.ndarray, np.ndarray]) -> None:
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


def query_text_vectors(*, text: str, version: ModelVersion) -> tuple[np.ndarray, np.ndarray]:
    """(the text tower's own vector, the vector in `version`'s space) for a query text.

    Keyed by the text with its whitespace collapsed, not lower-cased: a cased text model
    gives "Apple" and "apple" different vectors."""
    key = " ".join(text.split())
    found = CACHE.get(version_id=version.id, text=key)
    if found is not None:
        return found
    raw = space_for(version_base()).embed_texts([key])[0]
    vectors = (raw, space_for(version).texts_from_base(raw[None, :])[0])
    CACHE.put(version_id=version.id, text=key, vectors=vectors)
    return vectors
