"""The JSON API as a contract: its schema, its one error shape, and what each query means."""
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from embeddings.models import FEATURE_DIMENSIONS, ModelVersion
from search.forms import SearchForm
from search.models import QueryLog, RelevanceJudgment
from tests.conftest import unit
from tests.images import image_bytes

SEARCH = "/api/search"
JUDGMENTS = "/api/judgments"


def features(*weights: float) -> np.ndarray:
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]


@pytest.fixture
def catalog(make_images):
    return make_images(
        [
            {"title": "Red apple", "category": "food", "tags": ("fruit",), "image_vector": unit(1, 0.1), "feature_vector": features(1, 0.1)},
            {"title": "Green apple", "category": "food", "image_vector": unit(1, 0.3), "feature_vector": features(1, 0.3)},
            {"title": "Guitar", "category": "music", "image_vector": unit(0, 1), "feature_vector": features(0, 1)},
            {"title": "Drum", "category": "music", "image_vector": unit(0.1, 1)},
            {"title": "Apple crate, not yet embedded"},
        ]
    )


def test_the_schema_names_every_operation_and_takes_what_the_site_form_takes(client, db):
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {path: sorted(operations) for path, operations in schema["paths"].items()} == {
        SEARCH: ["get", "post"],
        JUDGMENTS: ["post"],
    }
    query = {parameter["name"] for parameter in schema["paths"][SEARCH]["get"]["parameters"]}
    upload = set(schema["paths"][SEARCH]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"])
    assert query == set(SearchForm.base_fields) - {"image"}
    assert upload == set(SearchForm.base_fields)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status != "200":
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_the_interactive_docs_work_offline(client, db):
    response = client.get("/api/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page and "/static/ninja/swagger-ui.css" in page
    assert "cdn" not in page.lower() and "https://" not in page
    assert 'data-api-csrf="true"' in page and response.cookies["csrftoken"].value  # "Try it out" can judge
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_a_keyword_search_with_filters_and_its_log(client, catalog):
    response = client.get(SEARCH, {"q": "apple", "mode": "keyword", "category": "food", "tag": "Fruit", "limit": 5})
    assert response.status_code == 200
    body = response.json()
    assert [result["title"] for result in body["results"]] == ["Red apple"]
    assert {key: body[key] for key in ("query", "mode", "version", "total", "depth", "offset", "limit", "has_next")} == {
        "query": "apple",
        "mode": "keyword",
        "version": 1,
        "total": 1,
        "depth": 100,
        "offset": 0,
        "limit": 5,
        "has_next": False,
    }
    log = QueryLog.objects.get()
    assert (log.kind, log.text, log.filters, log.result_ids) == ("text", "apple", {"category": "food", "tags": "('fruit',)"}, [catalog[0].id])


def test_more_like_this_by_get_and_by_form_post(client, catalog):
    expected = ["Green apple", "Guitar"]  # by CNN features; the drum has none
    assert [result["title"] for result in client.get(SEARCH, {"like": catalog[0].id}).json()["results"]] == expected
    posted = client.post(SEARCH, {"like": catalog[0].id, "limit": 1})
    assert posted.status_code == 200
    assert ([result["title"] for result in posted.json()["results"]], posted.json()["has_next"]) == (["Green apple"], True)


def test_more_like_an_image_that_does_not_exist_is_a_404_on_the_api_and_the_page(client, catalog):
    response = client.get(SEARCH, {"like": 99999})
    assert response.status_code == 404
    assert error(response) == {"code": "not_found", "message": "no image 99999", "field": None}
    page = client.get("/", {"like": 99999})
    assert page.status_code == 404 and "no image 99999" in page.content.decode()
    assert not QueryLog.objects.exists()


def test_more_like_an_image_without_vectors_says_so(client, catalog):
    response = client.get(SEARCH, {"like": catalog[4].id})
    assert response.status_code == 400
    assert error(response) == {
        "code": "invalid_query",
        "message": "that image has no vectors yet; try again once it is embedded",
        "field": None,
    }


@pytest.mark.parametrize(
    "params, message",
    [
        ({"like": "{drum}", "q": "rhythm"}, "image {drum} has no picture features yet, so it cannot be combined with words; search by either alone"),
        ({"like": "{red}", "mode": "keyword"}, "keyword mode matches words only and cannot use a picture; choose hybrid or semantic, or leave the picture out"),
        ({"like": "{red}", "q": "apple", "mode": "keyword"}, "keyword mode matches words only and cannot use a picture; choose hybrid or semantic, or leave the picture out"),
    ],
)
def test_parts_of_a_query_that_cannot_work_together_are_refused_not_dropped(client, catalog, params, message):
    ids = {"drum": catalog[3].id, "red": catalog[0].id}
    params = {key: value.format(**ids) for key, value in params.items()}
    message = message.format(**ids)
    response = client.get(SEARCH, params)
    assert response.status_code == 400
    assert error(response) == {"code": "invalid_query", "message": message, "field": None}
    page = client.get("/", params or {"q": ""})
    assert page.status_code == 400 and message.replace("“", "&ldquo;") in page.content.decode().replace("“", "&ldquo;")
    assert not QueryLog.objects.exists()


@pytest.mark.parametrize("params", [{"q": "   "}, {}, {"category": "/", "tag": " , ", "limit": 5}])
def test_a_search_with_neither_words_nor_a_picture_is_refused_as_a_missing_field(client, catalog, params):
    message = "Type something to search for, upload a picture, or pick “more like this”."
    for response in (client.get(SEARCH, params), client.post(SEARCH, params)):
        assert response.status_code == 422
        assert error(response) == {"code": "invalid_field", "message": f"q: {message}", "field": "q"}
    page = client.get("/", params or {"q": ""})
    assert page.status_code == 400 and message.replace("“", "&ldquo;") in page.content.decode().replace("“", "&ldquo;")
    assert not QueryLog.objects.exists()


def test_a_picture_in_keyword_mode_or_with_like_is_refused_before_any_model_runs(client, catalog):
    picture = SimpleUploadedFile("query.png", image_bytes(size=(8, 8)), content_type="image/png")
    response = client.post(SEARCH, {"image": picture, "mode": "keyword"})
    assert (response.status_code, error(response)["message"]) == (
        400,
        "keyword mode matches words only and cannot use a picture; choose hybrid or semantic, or leave the picture out",
    )
    picture.seek(0)
    response = client.post(SEARCH, {"image": picture, "like": catalog[0].id})
    assert (response.status_code, error(response)["message"]) == (400, "search by an uploaded picture or by “more like this”, not both at once")


def test_totals_pages_and_depth_agree(client, make_images, settings):
    settings.GLIMPSE_SEARCH_DEPTH = 3
    make_images([{"title": f"apple {number}"} for number in range(5)])
    pages = [client.get(SEARCH, {"q": "apple", "mode": "keyword", "limit": 2, "page": page}).json() for page in (1, 2)]
    assert [(len(page["results"]), page["total"], page["depth"], page["has_next"]) for page in pages] == [(2, 3, 3, True), (1, 3, 3, False)]
    assert [result["title"] for page in pages for result in page["results"]] == ["apple 0", "apple 1", "apple 2"]
    beyond = client.get(SEARCH, {"q": "apple", "mode": "keyword", "limit": 2, "page": 3})
    assert beyond.status_code == 400
    assert error(beyond) == {"code": "invalid_query", "message": "results go 3 deep; ask for an earlier page", "field": None}
    last = client.get("/", {"q": "apple", "mode": "keyword", "limit": 2, "page": 2})
    first = client.get("/", {"q": "apple", "mode": "keyword", "limit": 2})
    assert (first.context["has_next"], last.context["has_next"]) == (True, False)
    assert "3 results" in first.content.decode()
    assert client.get("/", {"q": "apple", "mode": "keyword", "limit": 2, "page": 3}).status_code == 400


def test_an_upload_over_the_limit_is_a_413_with_sizes_that_differ(client, db, settings):
    response = client.post(SEARCH, {"image": SimpleUploadedFile("big.png", b"\0" * (26 * 1024 * 1024))})
    assert response.status_code == 413
    assert error(response) == {
        "code": "too_large",
        "message": "the uploaded picture cannot be used: the file is 26.0 MiB; the limit is 25.0 MiB",
        "field": None,
    }
    settings.GLIMPSE_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
    response = client.post(SEARCH, {"image": SimpleUploadedFile("big.png", b"\0" * (25 * 1024 * 1024 + 1))})
    assert error(response)["message"] == (
        "the uploaded picture cannot be used: the file is 25.0 MiB (26,214,401 bytes); the limit is 26,214,400 bytes"
    )


def test_an_upload_that_is_not_a_picture_is_a_400(client, db):
    response = client.post(SEARCH, {"image": SimpleUploadedFile("x.png", b"not an image")})
    assert response.status_code == 400
    assert error(response)["message"] == "the uploaded picture cannot be used: not an image: the content is in no known image format"


@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"q": "a", "limit": "many"}, "limit", "limit: use a whole number"),
        ({"q": "a", "limit": "1_0"}, "limit", "limit: use a whole number"),
        ({"q": "a", "collapse": "yes"}, "collapse", "collapse: use true or false"),
        ({"q": "a", "limit": 1000}, "limit", "limit: Input should be less than or equal to 100"),
        ({"q": "a", "page": 0}, "page", "page: Input should be greater than or equal to 1"),
        ({"q": "a", "mode": "fuzzy"}, "mode", "mode: Input should be 'hybrid', 'semantic' or 'keyword'"),
        ({"q": "x" * 201}, "q", "q: String should have at most 200 characters"),
        ({"q": "a\x00b"}, "q", "q: contains a NUL character, which cannot be stored"),
        ({"q": "a", "created_from": "yesterday"}, "created_from", "created_from: use a day as YYYY-MM-DD"),
        ({"q": "a", "created_to": "0"}, "created_to", "created_to: use a day as YYYY-MM-DD"),  # not 1970-01-01
        ({"q": "a", "created_to": "2026-02-30"}, "created_to", "created_to: Input should be a valid date or datetime, day value is outside expected range"),
        ({"like": 2**63}, "like", "like: Input should be less than or equal to 9223372036854775807"),
    ],
)
def test_a_parameter_that_does_not_validate_is_a_422_naming_it(client, db, params, field, message):
    response = client.get(SEARCH, params)
    assert response.status_code == 422
    assert error(response) == {"code": "invalid_field", "message": message, "field": field}


def test_an_unknown_path_or_method_gets_the_same_shape(client, db):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404
    assert error(missing) == {"code": "not_found", "message": "there is no API endpoint at /api/nothing", "field": None}
    wrong = client.delete(SEARCH)
    assert wrong.status_code == 405 and set(wrong["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert error(wrong)["code"] == "method_not_allowed" and error(wrong)["message"].startswith("DELETE is not allowed here; use ")
    assert client.get(JUDGMENTS).status_code == 405


def test_with_no_active_model_version_the_search_is_unavailable(client, catalog):
    ModelVersion.objects.update(state=ModelVersion.State.RETIRED)
    response = client.get(SEARCH, {"q": "apple", "mode": "keyword"})
    assert response.status_code == 503
    assert error(response) == {
        "code": "unavailable",
        "message": "no model version is active; run `manage.py migrate`, which creates version 1",
        "field": None,
    }


def test_head_answers_like_get_without_a_body(client, catalog):
    response = client.head(SEARCH, {"q": "apple", "mode": "keyword"})
    assert (response.status_code, response.content) == (200, b"")


def test_a_curator_records_a_judgment(client, catalog, curator):
    client.force_login(curator)
    response = client.post(JUDGMENTS, {"query": "  red   apple ", "image": catalog[0].id, "grade": 3}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("query", "image", "grade", "version")} == {"query": "red apple", "image": catalog[0].id, "grade": 3, "version": 1}
    regraded = client.post(JUDGMENTS, {"query": "red apple", "image": catalog[0].id, "grade": 1}, content_type="application/json")
    assert regraded.json()["grade"] == 1
    assert list(RelevanceJudgment.objects.order_by("id").values_list("query_key", "grade", "is_current")) == [
        ("red apple", 3, False),
        ("red apple", 1, True),
    ]


def test_a_judgment_can_tag_the_image_with_its_query(client, catalog, curator):
    from django.contrib.auth.models import Permission

    client.force_login(curator)
    grade = {"query": "Crisp apple", "image": catalog[1].id, "grade": 3, "tag": True}
    refused = client.post(JUDGMENTS, grade, content_type="application/json")
    assert refused.status_code == 403 and error(refused)["message"] == "curator may not change images' tags"
    curator.user_permissions.add(Permission.objects.get(codename="change_image"))
    too_low = client.post(JUDGMENTS, {**grade, "grade": 1}, content_type="application/json")
    assert too_low.status_code == 400 and error(too_low)["code"] == "invalid_judgment"
    assert not RelevanceJudgment.objects.exists()
    tagged = client.post(JUDGMENTS, grade, content_type="application/json")
    assert tagged.status_code == 200 and tagged.json()["tags"] == ["crisp apple"]
    assert client.post(JUDGMENTS, {**grade, "image": catalog[0].id, "tag": False}, content_type="application/json").json()["tags"] == ["fruit"]


def test_judgments_need_a_signed_in_curator_and_the_csrf_token(client, catalog, visitor, curator):
    grade = {"query": "apple", "image": catalog[0].id, "grade": 2}
    anonymous = client.post(JUDGMENTS, grade, content_type="application/json")
    assert anonymous.status_code == 401
    assert error(anonymous) == {"code": "not_authenticated", "message": "sign in first (/admin/login/), then send the session cookie", "field": None}
    client.force_login(visitor)
    refused = client.post(JUDGMENTS, grade, content_type="application/json")
    assert refused.status_code == 403 and error(refused)["code"] == "forbidden"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(curator)
    without_token = strict.post(JUDGMENTS, grade, content_type="application/json")
    assert without_token.status_code == 403 and error(without_token)["code"] == "forbidden"
    strict.cookies["csrftoken"] = token = "a" * 32
    assert strict.post(JUDGMENTS, grade, content_type="application/json", HTTP_X_CSRFTOKEN=token).status_code == 200
    assert RelevanceJudgment.objects.get().curator == curator


@pytest.mark.parametrize(
    "payload, status, code, field, message",
    [
        ({"query": "apple", "image": 99999, "grade": 2}, 400, "invalid_judgment", None, "image 99999 does not exist"),
        ({"query": "   ", "image": "{red}", "grade": 2}, 422, "invalid_field", "query", "query: needs at least one character that is not a space (and no NUL character)"),
        ({"query": "apple", "image": "{red}", "grade": 7}, 422, "invalid_field", "grade", "grade: Input should be less than or equal to 3"),
        ({"query": "apple", "grade": 2}, 422, "invalid_field", "image", "image: Field required"),
        ({"query": "apple", "image": "{red}", "grade": True}, 422, "invalid_field", "grade", "grade: Input should be a valid integer"),
        ({"query": "apple", "image": "12", "grade": 2}, 422, "invalid_field", "image", "image: Input should be a valid integer"),
        ({"query": "apple", "image": 0, "grade": 2}, 422, "invalid_field", "image", "image: Input should be greater than or equal to 1"),
        ({"query": "apple", "image": "{red}", "grade": 2, "grdae": 3}, 422, "invalid_field", "grdae", "grdae: Extra inputs are not permitted"),
    ],
)
def test_a_bad_judgment_is_refused_and_nothing_is_recorded(client, catalog, curator, payload, status, code, field, message):
    client.force_login(curator)
    payload = {key: int(value.format(red=catalog[0].id)) if value == "{red}" else value for key, value in payload.items()}
    response = client.post(JUDGMENTS, payload, content_type="application/json")
    assert response.status_code == status
    assert error(response) == {"code": code, "message": message, "field": field}
    assert not RelevanceJudgment.objects.exists()


def test_the_schema_publishes_every_limit_that_validation_applies(client):
    schema = client.get("/api/openapi.json").json()
    judgment = schema["components"]["schemas"]["JudgmentIn"]
    assert judgment["additionalProperties"] is False
    assert {key: judgment["properties"]["image"][key] for key in ("minimum", "maximum")} == {"minimum": 1, "maximum": 2**63 - 1}
    assert {key: judgment["properties"]["grade"][key] for key in ("minimum", "maximum")} == {"minimum": 0, "maximum": 3}
    like = next(parameter for parameter in schema["paths"]["/api/search"]["get"]["parameters"] if parameter["name"] == "like")
    assert {key: like["schema"][key] for key in ("minimum", "maximum")} == {"minimum": 1, "maximum": 2**63 - 1}

    def keys(node):
        if isinstance(node, dict):
            yield from node
            for value in node.values():
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    assert not {"ge", "le", "gt", "lt"} & set(keys(schema))  # pydantic's names are no JSON Schema keywords


def test_a_body_that_is_not_json_is_a_400(client, catalog, curator):
    client.force_login(curator)
    response = client.post(JUDGMENTS, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert error(response) == {"code": "bad_request", "message": "Cannot parse request body", "field": None}


def test_a_body_over_the_request_limit_is_a_413(client, catalog, curator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    client.force_login(curator)
    response = client.post(JUDGMENTS, {"query": "apple" * 50, "image": catalog[0].id, "grade": 2}, content_type="application/json")
    assert response.status_code == 413 and error(response)["code"] == "too_large"


@pytest.mark.slow
def test_words_and_a_picture_are_ranked_together(client, catalog):
    """The picture's list (CNN features) and the words' lists (vectors, full text) fuse in one ranking."""
    picture_only = client.get(SEARCH, {"like": catalog[2].id}).json()  # the guitar: features rank the apples after it
    assert [result["title"] for result in picture_only["results"]] == ["Green apple", "Red apple"]
    both = client.get(SEARCH, {"like": catalog[2].id, "q": "drum", "mode": "hybrid"})
    assert both.status_code == 200
    body = both.json()
    assert (body["query"], body["mode"]) == ("drum", "hybrid")
    # The drum only through the words, the apples only through the picture; no cut-off hides either.
    assert {result["title"] for result in body["results"]} == {"Drum", "Green apple", "Red apple"}
    log = QueryLog.objects.latest("id")
    assert (log.kind, log.text, log.similar_to_id) == ("similar", "drum", catalog[2].id)


def test_a_posted_search_takes_its_parameters_from_the_form_only(client, catalog):
    picture = SimpleUploadedFile("query.png", image_bytes(size=(8, 8)), content_type="image/png")
    response = client.post(f"{SEARCH}?q=apple&limit=2", {"image": picture})
    assert (response.status_code, error(response)) == (
        400,
        {"code": "bad_request", "message": "send q, limit as form fields of the posted body, with the picture, not in the URL", "field": None},
    )
    as_json = client.post(SEARCH, {"q": "apple"}, content_type="application/json")
    assert (as_json.status_code, error(as_json)["message"]) == (
        400,
        "send the search as multipart/form-data (a picture and form fields), not application/json",
    )
    form = client.post(SEARCH, {"q": "apple", "mode": "keyword", "limit": 1})
    assert (form.status_code, form.json()["limit"], len(form.json()["results"])) == (200, 1, 1)
    assert QueryLog.objects.count() == 1


def test_the_site_and_the_api_share_one_page_size(client, catalog, settings):
    assert settings.GLIMPSE_SEARCH_PAGE_SIZE == 24
    assert client.get(SEARCH, {"q": "apple", "mode": "keyword"}).json()["limit"] == 24
    assert client.get("/", {"q": "apple", "mode": "keyword"}).context["results"].limit == 24
    assert client.get("/api/openapi.json").json()["paths"][SEARCH]["get"]["parameters"][-1]["schema"]["default"] == 24
