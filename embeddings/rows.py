"""A version's rows, written from the frozen towers' outputs: for a new batch of images
(embeddings/services.py images_embed) or, for a new version, from the base rows."""
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .bulk import embeddings_upsert_columns
from .models import ModelVersion
from .selectors import base_rows_missing, version_base
from .spaces import ImageVectors, space_for


@dataclass(frozen=True)
class TextVectors:
    """The frozen text towers' vectors of some images' words, by position in a batch (only
    where there are words); `multilingual` is empty where that tower did not run."""

    english: dict[int, np.ndarray]
    multilingual: dict[int, np.ndarray] = field(default_factory=dict)

    def at(self, position_of: dict[int, int], image_ids: list[int]) -> "TextVectors":
        """Keyed by index into `image_ids` (as texts_embed returns them), re-keyed by each
        image's position in `position_of`; images not there (unreadable files) are left out."""
        where = {index: position_of[image_id] for index, image_id in enumerate(image_ids) if image_id in position_of}
        return TextVectors(
            english={where[index]: vector for index, vector in self.english.items() if index in where},
            multilingual={where[index]: vector for index, vector in self.multilingual.items() if index in where},
        )


def version_vectors(*, version: ModelVersion, base: ImageVectors, texts: TextVectors) -> dict[str, Sequence]:
    """One version's vector columns, as embeddings_upsert_columns takes them, from
    frozen-tower outputs (by position; text vectors only where there are words). The
    multilingual tower's columns go to the versions that have it and to the base rows,
    which keep them for every version to come."""
    space = space_for(version)
    vectors = space.from_base(base)
    count = len(vectors.text_space)
    positions = list(texts.english)
    english = dict(zip(positions, space.texts_from_base(np.stack([texts.english[p] for p in positions])))) if positions else {}
    columns = {
        "image_vector": vectors.text_space,
        "text_vector": [english.get(position) for position in range(count)],
        "feature_vector": vectors.features,
    }
    if base.multilingual is not None and (version.multilingual or version.id == version_base().id):
        columns["multilingual_image_vector"] = base.multilingual
        columns["multilingual_text_vector"] = [texts.multilingual.get(position) for position in range(count)]
    return columns


def version_rows_write(*, version: ModelVersion, image_ids: list[int], base: ImageVectors, texts: TextVectors) -> int:
    """Upsert one version's rows for `image_ids` by binary COPY."""
    return embeddings_upsert_columns(
        image_ids=image_ids, version_ids=[version.id] * len(image_ids), vectors=version_vectors(version=version, base=base, texts=texts)
    )


def version_backfill_chunk(*, version: ModelVersion, limit: int = 2000) -> int:
    """Write `version`'s rows for up to `limit` images that have base rows but none of its own.

    Pure arithmetic on the stored frozen-tower vectors: the CNN does not run again.
    """
    rows = list(
        base_rows_missing(version)
        .order_by("image_id")
        .values_list("image_id", "image_vector", "text_vector", "feature_vector", "multilingual_image_vector", "multilingual_text_vector")[:limit]
    )
    if not rows:
        return 0
    base = ImageVectors(
        text_space=np.stack([row[1] for row in rows]).astype(np.float32),
        features=np.stack([row[3] for row in rows]).astype(np.float32),
        # None for a picture whose file could not be read when the tower was added (base_multilingual_fill)
        multilingual=[None if row[4] is None else np.asarray(row[4], dtype=np.float32) for row in rows] if version.multilingual else None,
    )
    texts = TextVectors(
        english={position: np.asarray(row[2], dtype=np.float32) for position, row in enumerate(rows) if row[2] is not None},
        multilingual={position: np.asarray(row[5], dtype=np.float32) for position, row in enumerate(rows) if row[5] is not None},
    )
    # An upsert: a worker may have written some of these rows meanwhile, with the same vectors.
    version_rows_write(version=version, image_ids=[row[0] for row in rows], base=base, texts=texts)
    return len(rows)
