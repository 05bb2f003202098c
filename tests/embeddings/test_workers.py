"""Workers on many machines share one PostgreSQL and one Redis: two named worker
processes split one queue, and each image is embedded by exactly one of them."""
import signal

import pytest
from rq.job import Job
from rq.registry import FinishedJobRegistry

from catalog.models import Image
from catalog.services import ImageInput, images_create
from embeddings.models import ImageEmbedding, ModelVersion
from embeddings.worker import OutageProofWorker
from tests.config.conftest import wait_for
from tests.config.test_outages import finish, manage
from tests.images import distinct_pngs

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

IMAGES = 32  # 8 jobs of 4


def test_two_named_workers_share_the_queue_and_embed_each_image_once(queue):
    names = ["machine-a", "machine-b"]
    workers = [manage("embed_worker", "--no-sweep", "--name", name) for name in names]
    try:
        # Both listen before any job exists, so neither can take them all while the other loads its models.
        wait_for(
            lambda: sorted(worker.name for worker in OutageProofWorker.all(connection=queue.connection)) == names,
            seconds=240, what="both workers registered",
        )
        again = manage("embed_worker", "--no-sweep", "--name", "machine-a")
        _, refused = again.communicate(timeout=240)
        assert again.returncode != 0 and "a worker named 'machine-a' is already running" in refused

        report = images_create(items=[ImageInput(content=content, title=f"image {n}") for n, content in enumerate(distinct_pngs(IMAGES))])
        ids = sorted(image.id for image in report.created)
        wait_for(
            lambda: Image.objects.filter(embedding_status=Image.EmbeddingStatus.READY).count() == IMAGES,
            seconds=300, what="every image embedded",
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)  # rq's warm shutdown: the current job finishes first
    for worker in workers:
        finish(worker, seconds=60)

    version = ModelVersion.objects.get(number=1)
    assert sorted(ImageEmbedding.objects.filter(version=version).values_list("image_id", flat=True)) == ids
    done = Job.fetch_many(FinishedJobRegistry(queue=queue).get_job_ids(), connection=queue.connection)
    assert queue.failed_job_registry.count == 0 and queue.count == 0
    by_worker: dict[str, list[int]] = {}
    for job in done:
        by_worker.setdefault(job.worker_name, []).extend(job.args[0])
    assert sorted(by_worker) == names  # both did jobs
    embedded = [image_id for image_ids in by_worker.values() for image_id in image_ids]
    assert sorted(embedded) == ids  # and no image was embedded by both, or twice by one
