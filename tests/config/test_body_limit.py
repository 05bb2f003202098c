"""The request body limit, without a proxy in front: refused by Content-Length before a
byte is read, and a chunked body (no Content-Length) refused once it passes the limit."""
import io

from search.models import QueryLog

MiB = 1024 * 1024


class Unread(io.RawIOBase):
    """A body that fails the test if anything reads it."""

    def read(self, size=-1):
        raise AssertionError("the body was read")

    readinto = read


def test_a_300_mib_upload_is_refused_by_its_content_length_unread(client, db):
    for path, refused in (("/api/search", "application/json"), ("/", "text/html; charset=utf-8")):
        response = client.generic(
            "POST", path, b"", CONTENT_TYPE="multipart/form-data; boundary=x", CONTENT_LENGTH=str(300 * MiB), **{"wsgi.input": Unread()}
        )
        assert (response.status_code, response["Content-Type"]) == (413, refused)
    assert response.context["reason"] == "the request is 300.0 MiB; the limit is 30.0 MiB"
    api = client.generic("POST", "/api/search", b"", CONTENT_LENGTH=str(300 * MiB), **{"wsgi.input": Unread()})
    assert api.json() == {"error": {"code": "too_large", "message": "the request is 300.0 MiB; the limit is 30.0 MiB", "field": None}}


def test_a_chunked_body_is_read_up_to_the_limit_and_refused_past_it(client, db, settings):
    settings.GLIMPSE_MAX_REQUEST_BYTES = MiB
    over = client.generic(
        "POST", "/api/search", b"", CONTENT_TYPE="application/x-www-form-urlencoded", CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input": io.BytesIO(b"q=" + b"a" * MiB)},
    )
    assert over.status_code == 413
    assert over.json()["error"]["message"] == "the request is over the limit of 1.0 MiB"
    assert not QueryLog.objects.exists()


def test_a_chunked_body_under_the_limit_is_searched(client, make_images):
    make_images([{"title": "Red apple"}])
    response = client.generic(
        "POST", "/api/search", b"", CONTENT_TYPE="application/x-www-form-urlencoded", CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked", **{"wsgi.input": io.BytesIO(b"q=apple&mode=keyword")},
    )
    assert response.status_code == 200, response.content
    assert [hit["title"] for hit in response.json()["results"]] == ["Red apple"]


def test_a_content_length_that_is_no_number_is_a_400(client, db):
    response = client.generic("POST", "/api/search", b"", CONTENT_LENGTH="12abc", **{"wsgi.input": Unread()})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Content-Length must be a number of bytes, not '12abc'"
