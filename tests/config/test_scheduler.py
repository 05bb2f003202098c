"""The scheduler outlives a Redis outage: `rqcron` exited for good, and `make demo` with it."""
import signal
from datetime import datetime, timezone

import pytest
from redis import RedisError
from rq.cron import CronScheduler

from tests.config.conftest import kill_redis, wait_for
from tests.config.test_outages import manage

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def schedulers(queue) -> list:
    return CronScheduler.all(queue.connection)


def test_the_scheduler_waits_out_a_redis_outage_and_schedules_again(queue, outage):
    scheduler = manage("scheduler", "tests/config/cron_every_second.py")
    try:
        wait_for(lambda: len(schedulers(queue)) == 1, seconds=60, what="the scheduler registered itself")
        kill_redis()
        killed_at = datetime.now(timezone.utc)
        # It notices within a second (its job is due every second), restarts Redis and beats again.
        wait_for(lambda: _beating_since(queue, killed_at), seconds=60, what="the scheduler came back after the kill")
        assert scheduler.poll() is None, scheduler.communicate()[1]
    finally:
        scheduler.send_signal(signal.SIGTERM)
        _, errors = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, errors
    assert "Redis went away" in errors or "Redis does not answer" in errors, errors
    assert "Traceback" not in errors, errors


def _beating_since(queue, moment: datetime) -> bool:
    try:
        return any((scheduler.last_heartbeat or moment) > moment for scheduler in schedulers(queue))
    except RedisError:  # not back yet
        return False
