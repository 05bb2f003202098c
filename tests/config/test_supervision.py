"""Waiting for and restarting the servers this test run uses, after a real kill -9."""
import django_rq
import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from catalog.models import Image
from catalog.services import ImageInput, images_create
from config import supervision
from tests.config.conftest import kill_postgres, kill_redis, postgres_is_running
from tests.images import distinct_pngs

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_refused_connection_is_an_outage_and_a_cancelled_statement_is_not(outage):
    with pytest.raises(OperationalError) as cancelled:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(1)")
    assert not supervision.database_unreachable(cancelled.value)
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host="/nonexistent", dbname="glimpse", connect_timeout=1)
    assert supervision.database_unreachable(refused.value)


def test_waiting_for_the_database_restarts_a_killed_embedded_one(outage, capfd):
    assert Image.objects.count() == 0
    pid = kill_postgres()
    assert supervision.database_wait() is True
    errors = capfd.readouterr().err
    assert "the database does not answer" in errors
    assert f"PostgreSQL pid {pid} is gone; restarting it" in errors
    assert Image.objects.count() == 0
    assert supervision.database_wait() is False


def test_with_an_external_database_nothing_is_restarted(outage, settings):
    settings.GLIMPSE_EMBEDDED_DATABASE = False
    kill_postgres()
    supervision.database_revive()
    assert not postgres_is_running()


def test_waiting_for_redis_restarts_it_with_its_queue(queue, outage, capfd):
    queue.enqueue("embeddings.jobs.sweep")
    pid = kill_redis()
    assert supervision.redis_wait(client=queue.connection) is True
    assert f"Redis pid {pid} is gone; restarting it" in capfd.readouterr().err
    assert [job.func_name for job in django_rq.get_queue("embeddings").get_jobs()] == ["embeddings.jobs.sweep"]


def test_a_transaction_cut_by_an_outage_runs_again_once(outage, capfd):
    runs = []

    def import_one():
        with transaction.atomic():
            runs.append(len(runs) + 1)
            report = images_create(items=[ImageInput(content=distinct_pngs(1)[0], title="kept once")])
            if len(runs) == 1:
                kill_postgres()
            Image.objects.count()
        return report

    report = supervision.database_retrying(import_one)
    assert runs == [1, 2]
    assert list(Image.objects.values_list("id", "title")) == [(report.created[0].id, "kept once")]
    assert "lost the database" in capfd.readouterr().err


def test_a_statement_error_is_not_retried(outage):
    runs = []

    def cancelled():
        runs.append(1)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(1)")

    with pytest.raises(OperationalError):
        supervision.database_retrying(cancelled)
    assert runs == [1]
