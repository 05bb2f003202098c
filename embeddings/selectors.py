from collections import defaultdict

import numpy as np
from django.db import connection, transaction
from django.db.models import Max

from catalog.models import Image

from .exceptions import NoActiveVersion
from .indexes import scan_index_until_enough
from .models import ModelVersion
from .neighbours import NEIGHBOURS, neighbour_weights

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
