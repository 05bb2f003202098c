"""A cron config for tests: the sweep every second, so the scheduler touches Redis often."""
from rq import cron

from embeddings.jobs import sweep

cron.register(sweep, queue_name="embeddings", interval=1)
