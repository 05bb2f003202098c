"""What a visitor sees while a server is down: a plain 503, then the site again by itself."""
import pytest

from tests.config.conftest import kill_postgres, kill_redis, postgres_is_running

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_page_during_a_database_outage_is_a_plain_503_and_the_next_one_works(outage, client, capfd):
    assert client.get("/").status_code == 200
    pid = kill_postgres()
    response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    assert "Its database is not answering." in page and "Traceback" not in page
    assert f"PostgreSQL pid {pid} is gone; restarting it" in capfd.readouterr().err
    assert client.get("/").status_code == 200


def test_the_api_answers_json_during_a_database_outage(outage, client):
    kill_postgres()
    response = client.get("/api/search", {"like": 1})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {"code": "unavailable", "message": "Its database is not answering. Try again in a few seconds.", "field": None}
    }
    assert client.get("/api/search", {"like": 1}).status_code != 503


def test_with_an_external_database_the_site_answers_503_until_it_is_back(outage, client, settings):
    settings.GLIMPSE_EMBEDDED_DATABASE = False
    kill_postgres()
    assert client.get("/").status_code == 503
    assert client.get("/").status_code == 503
    assert not postgres_is_running()


def test_the_queue_page_during_a_redis_outage_is_a_503_and_redis_comes_back(outage, admin_client, capfd):
    assert admin_client.get("/admin/rq/").status_code == 200
    pid = kill_redis()
    response = admin_client.get("/admin/rq/")
    assert response.status_code == 503
    assert "Its job queue is not answering." in response.content.decode()
    assert f"Redis pid {pid} is gone; restarting it" in capfd.readouterr().err
    assert admin_client.get("/admin/rq/").status_code == 200
