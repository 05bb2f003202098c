"""What a search asks and answers: its modes, how deep it goes, its filters (and their
SQL), its hits and its results."""
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings

from catalog.models import Image
from embeddings.models import ModelVersion

from .exceptions import InvalidQuery

MODES = ("hybrid", "semantic", "keyword")
# What a search with filters and nothing to rank by answers with: the newest images first.
BROWSE_MODE = "newest"


def search_depth() -> int:
    """How many candidates each ranked list contributes, and how deep pages go: pages are
    cut from the fused list, so a fixed pool keeps page 2 consistent with page 1."""
    return settings.GLIMPSE_SEARCH_DEPTH


def depth_check(*, offset: int) -> int:
    """The search depth, or InvalidQuery when a page would start beyond it."""
    depth = search_depth()
    if not 0 <= offset < depth:
        raise InvalidQuery(f"results go {depth} deep; ask for an earlier page")
    return depth


@dataclass(frozen=True)
class Filters:
    category: str = ""
    tags: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None

    def __bool__(self):
        return bool(self.category or self.tags or self.created_from or self.created_to)


@dataclass
class Hit:
    image_id: int
    score: float
    image: Image | None = None  # fetched for the hits on the page only
    similarity: float | None = None  # the query's best cosine over the image's text-space vectors
    relevance: float | None = None  # 0–1, see search/relevance.py
    label: str = ""  # close / related / distant
    judged: bool = False  # a curator graded it relevant for this or a close query
    hidden_by: int = 0  # curators who graded it 0 for this or a close query, enough to hide it from visitors


@dataclass
class Results:
    hits: list[Hit]
    total: int
    mode: str
    version: ModelVersion
    latency_ms: float
    offset: int = 0
    limit: int = 20
    collapsed: int = 0
    image_ids: list[int] = field(default_factory=list)
    distant: int = 0  # candidates under the version's relevance cut-off, hidden
    nearest_only: bool = False  # nothing passed the cut-off; the hits are the nearest anyway
    picture: str = ""  # the uploaded query picture's key, for the next pages (search/query_pictures.py)

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total


def filter_sql(filters: Filters) -> tuple[str, list]:
    clauses, params = [], []
    if filters.category:
        # A category is a path: "animals" holds "animals/housecats" but not "animalsfoo".
        clauses.append("(i.category = %s OR starts_with(i.category, %s || '/'))")
        params += [filters.category, filters.category]
    if filters.tags:
        clauses.append("i.tags @> %s")
        params.append(list(filters.tags))
    if filters.created_from:
        clauses.append("i.created_at >= %s")
        params.append(filters.created_from)
    if filters.created_to:
        clauses.append("i.created_at < %s::date + 1")
        params.append(filters.created_to)
    return "".join(f" AND {clause}" for clause in clauses), params
