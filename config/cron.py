"""Periodic jobs, run by `manage.py scheduler` (the scheduler process)."""
from rq import cron

from embeddings.jobs import sweep
from search.jobs import embed_judged_queries, refresh_analytics, train_when_enough_judgments

cron.register(sweep, queue_name="embeddings", interval=300)
# Catches judged queries whose job could not be queued (Redis was down).
cron.register(embed_judged_queries, queue_name="embeddings", interval=300)
cron.register(train_when_enough_judgments, queue_name="training", interval=900, job_timeout=6 * 3600)
cron.register(refresh_analytics, queue_name="training", interval=3600)
