"""Borrowed words for the images that have none (embeddings/neighbours.py says how they
are made): written for a batch as it is embedded, and swept up for the images embedded
before any described image existed."""
import numpy as np
from django.db.models import Q

from .models import ImageEmbedding, ModelVersion
from .neighbours import borrowed_text_vector, neighbour_vector
from .selectors import described_neighbours


def neighbour_vectors_refresh(*, version: ModelVersion, image_ids: list[int]) -> int:
    """Store borrowed text vectors (embeddings/neighbours.py) for those of `image_ids` that
    have no text of their own in `version`; returns how many were written.

    One statement finds every image's nearest described images through the version's
    HNSW index on CNN features, one more fetches their description vectors.
    """
    if not image_ids:
        return 0
    near_by_image = described_neighbours(version=version, image_ids=image_ids)
    if not near_by_image:
        return 0
    lenders = {neighbour_id for near in near_by_image.values() for neighbour_id, _ in near}
    stored = {
        row[0]: row[1:]
        for row in version.embeddings.filter(image_id__in=set(near_by_image) | lenders).values_list(
            "image_id", "id", "image_vector", "text_vector", "multilingual_image_vector", "multilingual_text_vector"
        )
    }
    rows = []
    for image_id, near in near_by_image.items():
        similarities = np.array([similarity for _, similarity in near])
        row = ImageEmbedding(id=stored[image_id][0])
        # The same look-alikes lend their words in each tower's space.
        for column, image_column, text_column in (("neighbour_vector", 1, 2), ("multilingual_neighbour_vector", 3, 4)):
            words = [stored[neighbour_id][text_column] for neighbour_id, _ in near]
            if stored[image_id][image_column] is None or any(vector is None for vector in words):
                continue
            borrowed = borrowed_text_vector(similarities=similarities, text_vectors=np.stack(words))
            setattr(row, column, neighbour_vector(borrowed=borrowed, image_vector=stored[image_id][image_column], borrowed_share=version.borrowed_share))
        rows.append(row)
    ImageEmbedding.objects.bulk_update(rows, ["neighbour_vector", "multilingual_neighbour_vector"])
    return len(rows)


def neighbours_waiting(*, version: ModelVersion, after: int = 0, limit: int = 1000) -> list[int]:
    """Bare images of `version` (ids above `after`, in order) with no borrowed words yet in a
    space that needs them: embedded before any described image existed, or before the column."""
    missing = Q(neighbour_vector__isnull=True) | Q(multilingual_image_vector__isnull=False, multilingual_neighbour_vector__isnull=True)
    return list(
        version.embeddings.filter(missing, text_vector__isnull=True, feature_vector__isnull=False, image_id__gt=after)
        .order_by("image_id")
        .values_list("image_id", flat=True)[:limit]
    )


def neighbour_sweep(*, version: ModelVersion, limit: int = 1000) -> int:
    """Give borrowed words to up to `limit` bare images of `version` that have none yet."""
    if not version.embeddings.filter(text_vector__isnull=False).exists():
        return 0
    return neighbour_vectors_refresh(version=version, image_ids=neighbours_waiting(version=version, limit=limit))


def neighbours_fill(*, version: ModelVersion) -> int:
    """Borrowed words for every bare image of `version` that lacks them, in pages; returns
    how many were written. A page whose words cannot be made (its look-alikes lack a
    space's vectors) is passed, never retried in a loop."""
    if not version.embeddings.filter(text_vector__isnull=False).exists():
        return 0
    after, written = 0, 0
    while waiting := neighbours_waiting(version=version, after=after):
        written += neighbour_vectors_refresh(version=version, image_ids=waiting)
        after = waiting[-1]
    return written
