"""How close each hit on a page is: its similarity, relevance and label (close / related /
distant), read against the version's calibration (search/relevance.py), the words it
matches and the words read in its picture."""
import numpy as np
from django.conf import settings

from embeddings.models import ModelVersion

from .keywords import KeywordQuery
from .query import Hit
from .relevance import calibration_for
from .sql import halfvec, search_cursor

# The kind of vector (search/relevance.py KINDS) each image was ranked by, and its cosine:
# the description where there is one, else the borrowed words, else the bridge
# (embeddings/indexes.py). A described image is judged by its words, as it was ranked, not
# by a bridge vector the ranking did not use.
SIMILARITY_SQL = """
        SELECT image_id,
               CASE WHEN text_vector IS NOT NULL THEN 'text' WHEN neighbour_vector IS NOT NULL THEN 'neighbour' ELSE 'image' END,
               1 - (COALESCE(text_vector, neighbour_vector, image_vector) <=> %(query)s)
        FROM embeddings_imageembedding WHERE version_id = %(version)s AND image_id = ANY(%(ids)s)"""
# The same in the multilingual tower's space; its kinds have calibrations of their own.
MULTILINGUAL_SIMILARITY_SQL = """
        SELECT image_id,
               CASE WHEN multilingual_text_vector IS NOT NULL THEN 'multilingual_text'
                    WHEN multilingual_neighbour_vector IS NOT NULL THEN 'multilingual_neighbour' ELSE 'multilingual_image' END,
               1 - (COALESCE(multilingual_text_vector, multilingual_neighbour_vector, multilingual_image_vector) <=> %(query)s)
        FROM embeddings_imageembedding
        WHERE version_id = %(version)s AND image_id = ANY(%(ids)s) AND multilingual_image_vector IS NOT NULL"""

# How many of the query's words and phrases each image contains, and how many count
# (stop words parse to empty queries and are left out).
COVERAGE_SQL = """
        SELECT i.id, (SELECT count(*) FROM unnest(k.terms) term WHERE i.search_document @@ term), cardinality(k.terms)
        FROM catalog_image i, (
            SELECT ARRAY(
                SELECT term FROM (SELECT glimpse_to_tsquery('glimpse', word) AS term FROM unnest(%s::text[]) word) parsed
                WHERE numnode(term) > 0
            ) AS terms
        ) k
        WHERE i.id = ANY(%s)"""


def similarities(*, ids: list[int], vector, version: ModelVersion, multilingual: bool = False) -> dict[int, dict[str, float]]:
    """{image id: {kind: the query's cosine with that vector}} for the kind each image is
    ranked by, in the English tower's space or (`multilingual`) the multilingual one's."""
    with search_cursor() as cursor:
        cursor.execute(MULTILINGUAL_SIMILARITY_SQL if multilingual else SIMILARITY_SQL, {"query": halfvec(vector), "version": version.id, "ids": ids})
        return {image_id: {kind: float(value)} for image_id, kind, value in cursor.fetchall()}


# For the pictures on a page that have words read in them: the share of the query's words
# found among those words (a part, or one misread character, counts), and the cosine of
# the query with their meaning (null without a multilingual query vector).
PICTURE_TEXT_EVIDENCE_SQL = """
        SELECT i.id,
               (SELECT count(*) FROM unnest(t.terms) term WHERE glimpse_word_found(term, glimpse_words(i.picture_text)))::float
                   / greatest(cardinality(t.terms), 1),
               1 - (p.vector <=> %s::halfvec)
        FROM catalog_image i
        LEFT JOIN embeddings_picturetextvector p ON p.image_id = i.id AND p.text_model = %s,
             (SELECT glimpse_words(%s) AS terms) t
        WHERE i.id = ANY(%s) AND i.picture_text <> ''"""


def picture_text_evidence(*, ids: list[int], text: str, multilingual, version: ModelVersion) -> dict[int, tuple[float, float | None]]:
    """{image id: (share of the query's words found in its read words, cosine with their meaning)}."""
    with search_cursor() as cursor:
        cursor.execute(PICTURE_TEXT_EVIDENCE_SQL, [halfvec(multilingual), version.multilingual_text_model, text, ids])
        return {image_id: (float(share), None if similarity is None else float(similarity)) for image_id, share, similarity in cursor.fetchall()}


def keyword_coverage(*, ids: list[int], keywords: KeywordQuery) -> dict[int, float]:
    """Share of the query's (non-stop) words each image matches."""
    with search_cursor() as cursor:
        cursor.execute(COVERAGE_SQL, [list(keywords.terms), ids])
        return {image_id: matched / counted for image_id, matched, counted in cursor.fetchall() if counted}


def judge_hits(
    hits: list[Hit], *, text: str, vector: np.ndarray | None, judged_ids: tuple[int, ...], version: ModelVersion,
    multilingual: np.ndarray | None = None, read_vector: np.ndarray | None = None,
) -> None:
    """Fill each hit's similarity, relevance and label. Each text-space similarity is read
    against the version's calibration for its kind of vector, in the space of the tower
    that reads the query (the English one's when it reads most of it, else the
    multilingual one's); without one (keyword mode) relevance is the share of the query's
    words matched. Judged hits and hits matching every word are close, in their
    descriptions or in the words read in them; `read_vector`, the multilingual tower's
    vector of the query, finds the pictures whose read words mean it."""
    ids = [hit.image_id for hit in hits]
    keywords = KeywordQuery.parse(text)
    coverage = keyword_coverage(ids=ids, keywords=keywords) if keywords.terms and ids else {}
    similar = {}
    if ids and (vector is not None or multilingual is not None):
        similar = (
            similarities(ids=ids, vector=vector, version=version) if vector is not None
            else similarities(ids=ids, vector=multilingual, version=version, multilingual=True)
        )
    measured = [hit for hit in hits if similar.get(hit.image_id)]
    for hit, (relevance, label) in zip(measured, calibration_for(version).judge([similar[hit.image_id] for hit in measured])):
        hit.similarity = max(similar[hit.image_id].values())
        hit.relevance, hit.label = relevance, label
    # The words read in a picture: all of the query's found there, or its meaning close
    # enough to rank it, and the picture is shown whatever its look says.
    read = picture_text_evidence(ids=ids, text=" ".join(keywords.terms), multilingual=read_vector, version=version) if ids and text else {}
    judged = set(judged_ids)
    for hit in hits:
        hit.judged = hit.image_id in judged
        words = coverage.get(hit.image_id, 0.0)
        read_share, read_similarity = read.get(hit.image_id, (0.0, None))
        if vector is None and multilingual is None and (coverage or read):
            hit.relevance, hit.label = max(words, read_share), "related"
        if read_similarity is not None and read_similarity >= settings.GLIMPSE_PICTURE_TEXT_SIMILARITY and hit.label in ("", "distant"):
            hit.label = "related"
        if hit.judged or words == 1.0 or read_share == 1.0:
            hit.label = "close"
