import locale
import warnings

import django_rq
import numpy as np
import pytest
from django.db import connection

from catalog.models import Image
from catalog.services import ImageInput, images_create
from config import embedded
from embeddings.models import DIMENSIONS, ImageEmbedding, ModelVersion
from embeddings.services import QUEUE
from tests.images import distinct_pngs


def pytest_sessionstart(session):
    """The embedded PostgreSQL and Redis the run uses (as manage.py starts them for a command)."""
    embedded.start()


@pytest.fixture(autouse=True)
def the_locale_stays(request):
    """A test whose code changes the process's C locale (OpenVINO's model cache once left it
    at "C": later tests then read files and subprocess output as ASCII) is named in the
    warnings, and the locale is put back so that it cannot fail tests that come after it."""
    saved = locale.setlocale(locale.LC_ALL)
    yield
    if locale.setlocale(locale.LC_ALL) != saved:
        warnings.warn(f"{request.node.nodeid} changed the C locale to {locale.setlocale(locale.LC_ALL)!r}", stacklevel=1)
        locale.setlocale(locale.LC_ALL, saved)


@pytest.fixture
def queue():
    """The real embeddings queue (on the test Redis database), empty at the start and the end."""
    queue = django_rq.get_queue(QUEUE)
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


@pytest.fixture
def version(db) -> ModelVersion:
    return ModelVersion.objects.get(number=1)


def unit(*weights: float) -> np.ndarray:
    """A 384-d unit vector whose first components are `weights` (hand-checkable cosine)."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def random_unit_rows(rng: np.random.Generator, count: int, dimensions: int) -> np.ndarray:
    """`count` random unit rows (float32) drawn from `rng`."""
    rows = rng.normal(size=(count, dimensions)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def make_images(db):
    """Create catalog images with given fields and, optionally, hand-made vectors for version 1
    (any of ImageEmbedding's *_vector columns; a row is made where image_vector is given).

    The embeddings table is vacuumed first. Each earlier test's rows were rolled back, but
    their HNSW graph entries stay until a vacuum removes them, and the tests write the same
    few hand-made vectors again and again: after a few hundred tests a new row is linked only
    to dead entries that are exact duplicates of each other, no search reaches it, and an
    index scan returns fewer rows than there are (seen in test_versions and test_neighbours
    after the search tests). A live catalog has autovacuum for this; a test run is over
    before autovacuum comes round."""
    embeddings_vacuum()

    def make(specs: list[dict]) -> list[Image]:
        contents = distinct_pngs(len(specs) + make.counter)[make.counter :]
        make.counter += len(specs)
        items = [
            ImageInput(content=content, **{key: value for key, value in spec.items() if not key.endswith("_vector")})
            for spec, content in zip(specs, contents)
        ]
        report = images_create(items=items)
        assert not report.invalid and not report.duplicates
        version = ModelVersion.objects.get(number=1)
        rows = [
            ImageEmbedding(image=image, version=version, **{key: value for key, value in spec.items() if key.endswith("_vector")})
            for image, spec in zip(report.created, specs)
            if "image_vector" in spec
        ]
        ImageEmbedding.objects.bulk_create(rows)
        Image.objects.filter(id__in=[row.image_id for row in rows]).update(embedding_status=Image.EmbeddingStatus.READY)
        return report.created

    make.counter = 0
    return make


def embeddings_vacuum() -> None:
    """VACUUM from a second connection (VACUUM cannot run inside the test's transaction).
    SKIP_LOCKED: a test that already holds a conflicting lock is left as it is rather than deadlocked."""
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("VACUUM (SKIP_LOCKED) embeddings_imageembedding")
    finally:
        other.close()


@pytest.fixture
def curator(db, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("curator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_relevancejudgment"))
    return django_user_model.objects.get(id=user.id)  # fresh, so the permission cache sees it


@pytest.fixture
def visitor(db, django_user_model):
    return django_user_model.objects.create_user("visitor", password="pw")


@pytest.fixture
def data_dir(tmp_path_factory):
    """A data folder of its own for embedded servers; they are stopped after the test."""
    folder = tmp_path_factory.mktemp("svc")
    yield folder
    embedded.stop_embedded_redis(folder)
    if (folder / "postgres" / "postmaster.pid").exists():
        embedded.stop_embedded_database(folder)
