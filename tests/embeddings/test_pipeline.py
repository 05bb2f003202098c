"""The embedding pipeline (images_embed) against the towers run directly, with the real encoders."""
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from catalog.imaging import decode
from catalog.models import Image
from catalog.services import ImageInput, images_create
from embeddings.batches import SMALLEST_PASS
from embeddings.bulk import table_columns
from embeddings.models import ImageEmbedding
from embeddings.selectors import version_base
from embeddings.services import images_embed
from embeddings.spaces import BridgeSpace
from tests.images import DEMO
from tests.timeouts import timeout  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def as_array(value) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def stored_tolerance() -> float:
    """1e-4 as the encoders promise; half precision's rounding on top where the columns are halfvec."""
    with connection.cursor() as cursor:
        (column,) = table_columns(cursor.cursor, table=ImageEmbedding._meta.db_table, names=["image_vector"])
    return 1e-4 if column.type == "vector" else 1e-3


def test_the_pipeline_stores_the_vectors_of_the_towers_run_directly_and_a_bad_file_fails_alone(version, timeout):
    files = sorted(Path(DEMO, "images").glob("*.png"))[: 2 * SMALLEST_PASS + 3]
    # Every other drawing described: text vectors for some rows, borrowed words for the rest.
    items = [ImageInput(content=path.read_bytes(), title=path.stem.replace("_", " ") if number % 2 else "") for number, path in enumerate(files)]
    created = images_create(items=items).created
    broken, missing = created[3], created[SMALLEST_PASS + 1]
    Path(settings.MEDIA_ROOT, broken.file.name).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Path(settings.MEDIA_ROOT, missing.file.name).unlink()

    report = images_embed(image_ids=[image.id for image in created])

    readable = [image for image in created if image not in (broken, missing)]
    assert report.embedded == [image.id for image in readable]
    assert sorted(report.failed) == sorted([broken.id, missing.id])
    assert report.failed[broken.id].startswith("cannot decode the stored file:")
    assert report.failed[missing.id].startswith(f"cannot read the stored file {missing.file.name}:")
    statuses = dict(Image.objects.values_list("id", "embedding_status"))
    assert statuses == {image.id: "failed" if image in (broken, missing) else "ready" for image in created}

    # The same towers in one batch, straight from the files: what the pipeline must have stored,
    # in both text towers' spaces (a new catalog's version 1 has the multilingual one).
    assert version_base().multilingual
    bridge = BridgeSpace(multilingual=True)
    pixels = np.stack(
        [bridge.preprocess(decode(Path(settings.MEDIA_ROOT, image.file.name).read_bytes(), max_pixels=10**9, max_aspect_ratio=10**9).rgb) for image in readable]
    )
    expected = bridge.embed_image_batch(pixels)
    described = [image for image in readable if image.title]
    words = [Image.objects.get(id=image.id).text for image in described]
    texts = dict(zip((image.id for image in described), bridge.embed_texts(words)))
    multilingual_texts = dict(zip((image.id for image in described), bridge.embed_multilingual_texts(words)))
    rows = {row.image_id: row for row in ImageEmbedding.objects.filter(version=version)}
    assert sorted(rows) == sorted(image.id for image in readable)
    tolerance = stored_tolerance()
    for position, image in enumerate(readable):
        row = rows[image.id]
        np.testing.assert_allclose(as_array(row.image_vector), expected.text_space[position], atol=tolerance)
        np.testing.assert_allclose(as_array(row.feature_vector), expected.features[position], atol=tolerance)
        np.testing.assert_allclose(as_array(row.multilingual_image_vector), expected.multilingual[position], atol=tolerance)
        if image.id in texts:
            np.testing.assert_allclose(as_array(row.text_vector), texts[image.id], atol=tolerance)
            np.testing.assert_allclose(as_array(row.multilingual_text_vector), multilingual_texts[image.id], atol=tolerance)
            assert row.neighbour_vector is None and row.multilingual_neighbour_vector is None
        else:
            assert row.text_vector is None and row.neighbour_vector is not None
            assert row.multilingual_text_vector is None and row.multilingual_neighbour_vector is not None
