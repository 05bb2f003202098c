"""Curators' relevance judgments: recording them (with history) and reading the current ones."""
import hashlib
import logging
from collections import defaultdict

import django_rq
import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from redis.exceptions import RedisError

from catalog.models import TAG_MAX_CHARS, Image
from catalog.services import image_tags_add
from embeddings.models import ModelVersion
from embeddings.selectors import version_active

from .evaluation import RELEVANT_GRADE
from .exceptions import InvalidJudgment, JudgmentNotAllowed, TagNotAllowed, TooFewJudgments
from .models import JudgedQuery, RelevanceJudgment

PERMISSION = "search.add_relevancejudgment"
# Tagging a result with its query writes the image's own fields.
TAG_PERMISSION = "catalog.change_image"
# On the embedding workers' queue: they have the text tower loaded.
JUDGED_QUERIES_QUEUE = "embeddings"
JUDGED_QUERIES_JOB = "search.jobs.embed_judged_queries"

logger = logging.getLogger("glimpse.search")


def query_key_for(*, text: str = "", image_hash: str = "") -> str:
    if image_hash:
        return f"image:{image_hash}"
    key = " ".join(text.lower().split())
    if not key:
        raise InvalidJudgment("a judgment needs the query it answers")
    return key[:300]


def judgment_record(
    *,
    curator,
    image_id: int,
    grade: int,
    query_text: str = "",
    query_image_hash: str = "",
    query_vector: np.ndarray | None = None,
    query_text_vector: np.ndarray | None = None,
    version: ModelVersion | None = None,
    tag: bool = False,
) -> RelevanceJudgment:
    """Record a grade; an unchanged grade is a no-op, a changed one keeps the old row as history.
    A text query is remembered with its text-tower vector (given, or computed by a job
    queued when the judgment commits) so that close queries can use its grades before
    any training; the visitor's search never encodes judged queries.

    With `tag`, a relevant result (grade 2 or 3) also takes the query as one of its tags,
    so the curator's words describe the picture from then on: it is re-embedded and ranked
    by its words, and pictures without text near it borrow them. Needs the permission to
    change images; a refused tag records nothing."""
    if not curator.has_perm(PERMISSION):
        raise JudgmentNotAllowed(f"{curator} may not judge results")
    if grade not in RelevanceJudgment.Grade.values:
        raise InvalidJudgment(f"grade must be 0, 1, 2 or 3, not {grade!r}")
    if not Image.objects.filter(id=image_id).exists():
        raise InvalidJudgment(f"image {image_id} does not exist")
    key = query_key_for(text=query_text, image_hash=query_image_hash)
    if tag and (problem := tag_problem(grade=grade, query_text=query_text, query_image_hash=query_image_hash)):
        raise InvalidJudgment(problem)
    if tag and not curator.has_perm(TAG_PERMISSION):
        raise TagNotAllowed(f"{curator} may not change images' tags")
    version = version or version_active()
    with transaction.atomic():
        judgment_lock(curator_id=curator.pk, image_id=image_id, query_key=key)
        if tag:
            image_tags_add(image_id=image_id, tags=[query_text])
        if not query_image_hash:
            _, created = JudgedQuery.objects.get_or_create(
                query_key=key, defaults={"text": " ".join(query_text.split()), "vector": query_text_vector}
            )
            if created and query_text_vector is None:
                transaction.on_commit(judged_queries_enqueue)
        current = RelevanceJudgment.objects.filter(query_key=key, image_id=image_id, curator=curator, is_current=True).first()
        if current and current.grade == grade:
            return current
        if current:
            RelevanceJudgment.objects.filter(id=current.id).update(is_current=False)
        return RelevanceJudgment.objects.create(
            query_key=key,
            query_text=" ".join(query_text.split()),
            query_image_hash=query_image_hash,
            query_vector=query_vector,
            image_id=image_id,
            grade=grade,
            curator=curator,
            version=version,
        )


def tag_problem(*, grade: int, query_text: str, query_image_hash: str = "") -> str:
    """Why a judgment's query cannot become its image's tag ("" when it can)."""
    if query_image_hash:
        return "only a query in words can become a tag, not a picture"
    if grade < RELEVANT_GRADE:
        return f"only a relevant result (grade 2 or 3) takes the query as a tag, not one graded {grade}"
    length = len(" ".join(query_text.split()))
    if length > TAG_MAX_CHARS:
        return f"a tag holds up to {TAG_MAX_CHARS} characters; this query has {length}"
    return ""


def judgment_lock(*, curator_id: int, image_id: int, query_key: str) -> None:
    """Serialise grades of one (curator, image, query) until the transaction ends.

    A row lock cannot do it: the first grade has no row to lock yet, and a regrade's
    FOR UPDATE skips the row a concurrent regrade just retired. Two concurrent clicks
    would then both insert a current row and one would fail on `one_current_grade`.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"judgment:{curator_id}:{image_id}:{query_key}"])


def current_grades(*, curator, query_text: str, image_ids: list[int]) -> dict[int, int]:
    """This curator's current grades for results on a page."""
    if not query_text.strip():
        return {}
    return dict(
        RelevanceJudgment.objects.filter(
            query_key=query_key_for(text=query_text), curator=curator, image_id__in=image_ids, is_current=True
        ).values_list("image_id", "grade")
    )


def judged_text_queries() -> dict[str, dict[int, float]]:
    """{normalised query: {image id: mean current grade over curators}} for text queries."""
    grades = defaultdict(lambda: defaultdict(list))
    rows = RelevanceJudgment.objects.filter(is_current=True, query_image_hash="").values_list("query_key", "image_id", "grade")
    for key, image_id, grade in rows:
        grades[key][image_id].append(grade)
    return {key: {image_id: float(np.mean(values)) for image_id, values in images.items()} for key, images in grades.items()}


def judged_queries_enqueue() -> None:
    """Queue the job that embeds judged queries; with Redis down, the scheduled run of the
    same job (config/cron.py) embeds them later."""
    try:
        django_rq.get_queue(JUDGED_QUERIES_QUEUE).enqueue(JUDGED_QUERIES_JOB, result_ttl=3600)
    except RedisError as error:
        logger.warning("could not queue the judged-query vectors (%s); the scheduled run will embed them", error)


def judged_queries_embed(*, encode, encode_multilingual=None) -> int:
    """Give judged queries that lack them their text towers' vectors (`encode`: texts ->
    unit rows through the English tower; `encode_multilingual`, where there is that tower,
    through the multilingual one)."""
    missing = Q(vector__isnull=True) | Q(multilingual_vector__isnull=True) if encode_multilingual else Q(vector__isnull=True)
    waiting = list(JudgedQuery.objects.filter(missing).order_by("id")[:1000])
    if not waiting:
        return 0
    texts = [query.text for query in waiting]
    for query, vector in zip(waiting, encode(texts)):
        query.vector = vector
    if encode_multilingual:
        for query, vector in zip(waiting, encode_multilingual(texts)):
            query.multilingual_vector = vector
    JudgedQuery.objects.bulk_update(waiting, ["vector", "multilingual_vector"])
    return len(waiting)


def is_held_out(query: str, *, seed: int, share: float) -> bool:
    digest = hashlib.sha256(f"{seed}:{query.lower()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def training_check(*, seed: int = 0) -> None:
    """Refuse a run at once when none of the judged queries would be held out: its version
    could not be compared with the active one, so it could never be released."""
    share = settings.GLIMPSE_HELD_OUT_SHARE
    queries = judged_text_queries()
    if not any(is_held_out(query, seed=seed, share=share) for query in queries):
        raise TooFewJudgments(
            f"Not trained: the judgments cover {len(queries)} text quer{'y' if len(queries) == 1 else 'ies'} and none of them "
            f"falls in the held-out {share:.0%} that a new version is measured on, so it could never be released. "
            "Judge the results of more queries first."
        )
