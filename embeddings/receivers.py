import logging

from redis.exceptions import RedisError

from .services import embeddings_enqueue

logger = logging.getLogger("glimpse.embeddings")


def queue_embedding(sender, *, image_ids: list[int], **kwargs) -> None:
    """Runs after the catalog's transaction commits. With Redis down the rows stay
    pending and the sweeper queues them later: the database is the source of truth."""
    try:
        embeddings_enqueue(image_ids=image_ids)
    except RedisError as error:
        logger.warning("could not queue %d images for embedding (%s); the sweeper will retry", len(image_ids), error)
