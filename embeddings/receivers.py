import logging

from redis.exceptions import RedisError

from config import supervision

from .services import embeddings_enqueue

logger = logging.getLogger("glimpse.embeddings")


def queue_embedding(sender, *, image_ids: list[int], **kwargs) -> None:
    """Runs after the catalog's transaction commits. The first process to find the embedded
    Redis dead starts it again and queues the jobs after all; with Redis still down the rows
    stay pending and the sweeper queues them later: the database is the source of truth."""
    for last_try in (False, True):
        try:
            embeddings_enqueue(image_ids=image_ids)
            return
        except RedisError as error:
            if last_try or not supervision.redis_revive():
                logger.warning("could not queue %d images for embedding (%s); the sweeper will retry", len(image_ids), error)
                return
