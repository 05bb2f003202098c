from collections import defaultdict

import django_rq
import numpy as np
from django.db import connection, transaction
from django.db.models import Max

from catalog.models import Image

from .exceptions import NoActiveVersion
from .indexes import scan_index_until_enough
from .models import ImageEmbedding, ModelVersion
from .neighbours import NEIGHBOURS, neighbour_weights
from .queues import JOB, QUEUE

# A tag is suggested when the neighbours carrying it hold at least this share of the weight.
SUGGESTED_TAG_WEIGHT = 0.25
SUGGESTED_TAGS = 10


def version_active() -> ModelVersion:
    # Every search asks: the projection heads (megabytes for a trained version) load only
    # when a query text is not in the query-vector cache (search/query_vectors.py).
    version = ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).defer("weights").first()
    if version is None:
        raise NoActiveVersion("no model version is active; run `manage.py migrate`, which creates version 1")
    return version


def version_base() -> ModelVersion:
    """The bridge version: its rows hold the frozen towers' outputs every other version builds on."""
    return ModelVersion.objects.get(kind=ModelVersion.Kind.BRIDGE, number=1)


def version_number_next() -> int:
    """The number a new version takes; call inside the transaction that creates it."""
    return (ModelVersion.objects.aggregate(Max("number"))["number__max"] or 0) + 1


def versions_written() -> list[ModelVersion]:
    """Versions that new images must get vectors for: the base, the active one, any being backfilled."""
    versions = {version_base()}
    versions.update(ModelVersion.objects.filter(state__in=[ModelVersion.State.ACTIVE, ModelVersion.State.BACKFILLING]))
    return sorted(versions, key=lambda version: version.number)


DESCRIBED_NEIGHBOURS_SQL = """
    SELECT near.image_id, 1 - near.distance, image.tags
    FROM embeddings_imageembedding own
    CROSS JOIN LATERAL (
        SELECT described.image_id, described.feature_vector <=> own.feature_vector AS distance
        FROM embeddings_imageembedding described
        WHERE described.version_id = %(version)s AND described.feature_vector IS NOT NULL AND described.text_vector IS NOT NULL
            AND described.image_id <> own.image_id
        ORDER BY described.feature_vector <=> own.feature_vector
        LIMIT %(depth)s
    ) near
    JOIN catalog_image image ON image.id = near.image_id
    WHERE own.version_id = %(version)s AND own.image_id = %(image)s AND own.feature_vector IS NOT NULL
    ORDER BY near.distance"""


def image_suggested_tags(*, image_id: int, version: ModelVersion | None = None) -> list[tuple[str, float]]:
    """Tags of the visually nearest described images, the ones the image's borrowed text
    vector is made of, as (tag, weight) best first; tags the image has are left out."""
    version = version or version_active()
    with transaction.atomic(), connection.cursor() as cursor:
        scan_index_until_enough(cursor, depth=NEIGHBOURS)
        cursor.execute(DESCRIBED_NEIGHBOURS_SQL, {"depth": NEIGHBOURS, "version": version.id, "image": image_id})
        near = cursor.fetchall()
    own = set(Image.objects.filter(id=image_id).values_list("tags", flat=True).first() or ())
    if not near:
        return []
    weights = neighbour_weights(np.array([similarity for _, similarity, _ in near]))
    scores: dict[str, float] = defaultdict(float)
    for (_, _, tags), weight in zip(near, weights):
        for tag in set(tags) - own:
            scores[tag] += float(weight)
    ranked = sorted(((tag, round(score, 4)) for tag, score in scores.items()), key=lambda item: (-item[1], item[0]))
    return [(tag, score) for tag, score in ranked if score >= SUGGESTED_TAG_WEIGHT][:SUGGESTED_TAGS]


def queued_image_ids() -> set[int]:
    queue = django_rq.get_queue(QUEUE)
    ids: set[int] = set()
    for job in queue.get_jobs():
        if job.func_name == JOB and job.args:
            ids.update(job.args[0])
    return ids


def base_rows_missing(version: ModelVersion):
    """The base version's rows for images that `version` has no vectors for yet."""
    return ImageEmbedding.objects.filter(version=version_base()).exclude(
        image_id__in=ImageEmbedding.objects.filter(version=version).values("image_id")
    )


NEAREST_DESCRIBED_SQL = """
    SELECT bare.id, bare.image_id, near.image_id, 1 - near.distance
    FROM embeddings_imageembedding bare
    CROSS JOIN LATERAL (
        SELECT described.image_id, described.feature_vector <=> bare.feature_vector AS distance
        FROM embeddings_imageembedding described
        WHERE described.version_id = %(version)s AND described.feature_vector IS NOT NULL AND described.text_vector IS NOT NULL
        ORDER BY described.feature_vector <=> bare.feature_vector
        LIMIT %(depth)s
    ) near
    WHERE bare.version_id = %(version)s AND bare.image_id = ANY(%(ids)s)
        AND bare.text_vector IS NULL AND bare.feature_vector IS NOT NULL
    ORDER BY bare.id, near.distance"""

BARE_NEAR_SQL = """
    SELECT DISTINCT near.image_id
    FROM embeddings_imageembedding described
    CROSS JOIN LATERAL (
        SELECT bare.image_id
        FROM embeddings_imageembedding bare
        WHERE bare.version_id = %(version)s AND bare.feature_vector IS NOT NULL AND bare.text_vector IS NULL
        ORDER BY bare.feature_vector <=> described.feature_vector
        LIMIT %(depth)s
    ) near
    WHERE described.version_id = %(version)s AND described.image_id = ANY(%(ids)s)
        AND described.text_vector IS NOT NULL AND described.feature_vector IS NOT NULL"""


def described_neighbours(*, version: ModelVersion, image_ids: list[int]) -> dict[int, list[tuple[int, float]]]:
    """{bare image id: [(described image id, feature cosine)], nearest first}: whose words
    each of `image_ids` that has none borrows (the same in every version of one catalog)."""
    with transaction.atomic(), connection.cursor() as cursor:
        scan_index_until_enough(cursor, depth=NEIGHBOURS)
        cursor.execute(NEAREST_DESCRIBED_SQL, {"depth": NEIGHBOURS, "version": version.id, "ids": sorted(set(image_ids))})
        found = cursor.fetchall()
    near: dict[int, list[tuple[int, float]]] = {}
    for _, image_id, neighbour_id, similarity in found:
        near.setdefault(image_id, []).append((neighbour_id, float(similarity)))
    return near


def bare_images_near(*, version: ModelVersion, image_ids: list[int]) -> list[int]:
    """Images without text whose borrowed words may have changed now that these described
    images exist: the nearest bare ones of each by CNN features.

    An approximation of "whose nearest described images now include this one", which
    would need each image's current neighbours; twice the neighbour count of bare images
    around each covers a catalog that is at least a third described.
    """
    if not image_ids:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        scan_index_until_enough(cursor, depth=2 * NEIGHBOURS)
        cursor.execute(BARE_NEAR_SQL, {"depth": 2 * NEIGHBOURS, "version": version.id, "ids": sorted(set(image_ids))})
        return [row[0] for row in cursor.fetchall()]
