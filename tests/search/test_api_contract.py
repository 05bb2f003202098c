"""Property-based: generated requests, valid and invalid by the schema, for every operation
of the API, against the real application (in process, over WSGI) and the real database.
No answer may be a 500 or break the schema; a request the schema calls valid is accepted,
or refused by one of the rules the schema cannot say, with that rule's answer.

In CI the examples are derandomised: the same EXAMPLES requests every run, so a failure
is a change in the code, never a new draw. A longer random run, by hand:

    GLIMPSE_CONTRACT_EXAMPLES=5000 GLIMPSE_CONTRACT_RANDOM=1 .venv/bin/python -m pytest tests/search/test_api_contract.py

(`make contract`); hypothesis prints the seed of a failing run, to replay it with
`--hypothesis-seed`.
"""
import os

import numpy as np
import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.generation import GenerationMode

from catalog.exceptions import InvalidImage
from catalog.imaging import decode
from catalog.models import TAG_MAX_CHARS
from config.wsgi import application
from embeddings.models import FEATURE_DIMENSIONS
from search.selectors import search_depth
from tests.conftest import random_unit_rows, unit
from tests.images import image_bytes
from tests.timeouts import timeout  # noqa: F401

# Enough to reach every parameter in both modes, small enough to finish within a minute here.
EXAMPLES = int(os.environ.get("GLIMPSE_CONTRACT_EXAMPLES", 200))
RANDOM = os.environ.get("GLIMPSE_CONTRACT_RANDOM") == "1"


@pytest.fixture
def catalog(make_images):
    features = random_unit_rows(np.random.default_rng(0), 2, FEATURE_DIMENSIONS)
    return make_images(
        [
            {"title": "Red apple", "category": "food", "tags": ("fruit",), "image_vector": unit(1, 0.1), "feature_vector": features[0]},
            {"title": "Guitar", "category": "music", "image_vector": unit(0, 1), "feature_vector": features[1]},
            {"title": "Crate, not yet embedded"},
        ]
    )


@pytest.fixture
def connection_kept_across_requests():
    """The test's transaction spans the requests: the handler must not close the database
    connection at each request's start and end (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def is_picture(content) -> bool:
    """Whether an upload is a picture the site can read (schemathesis wraps its bytes in a Binary)."""
    try:
        decode(bytes(getattr(content, "data", content)), max_pixels=10**8, max_aspect_ratio=32)
    except (InvalidImage, TypeError):
        return False
    return True


def search_refusal(case, *, unembedded: int) -> tuple[int, str] | None:
    """(status, error code) for a search the schema calls valid but the API refuses by a
    documented rule the schema cannot say; None when it must be answered.

    Only the rules that apply to what was generated are listed; "like" names a real image
    only where the test put one in (a made-up id is a 404, which the check accepts)."""
    fields = case.body if case.media_type == "multipart/form-data" else case.query
    fields = fields if isinstance(fields, dict) else {}
    words = str(fields.get("q") or "").strip()
    picture = bool(getattr(fields.get("image"), "data", fields.get("image")))  # an empty upload is no upload
    kept = bool(fields.get("picture"))  # an earlier upload's key: none is kept here, so it has expired
    like = fields.get("like")
    category = str(fields.get("category") or "").strip().strip("/")
    tags = any(part.strip() for part in str(fields.get("tag") or "").split(","))
    days = [fields.get(name) for name in ("created_from", "created_to")]
    if not (words or picture or kept or like is not None or category or tags or any(days)):
        return 422, "invalid_field"  # neither words nor a picture nor a filter
    if (picture or kept) and like is not None or picture and kept:
        return 400, "invalid_query"  # two pictures
    if kept and fields.get("mode") == "keyword":
        return 400, "invalid_query"  # keyword mode has no picture list
    if picture and not is_picture(fields["image"]):
        return 400, "invalid_query"  # bytes that are no picture
    if (picture or like is not None) and fields.get("mode") == "keyword":
        return 400, "invalid_query"  # keyword mode has no picture list
    if all(days) and str(days[0]) > str(days[1]):
        return 400, "invalid_query"  # the dates the wrong way round
    page, limit = int(fields.get("page", 1)), int(fields.get("limit", django_settings.GLIMPSE_SEARCH_PAGE_SIZE))
    if (page - 1) * limit >= search_depth():
        return 400, "invalid_query"  # a page beyond the depth
    if like == unembedded:
        return 400, "invalid_query"  # no vectors yet
    if kept and not picture:
        return 400, "invalid_query"  # the picture is no longer kept
    return None


def judgment_refusal(case, *, ids: list[int]) -> tuple[int, str] | None:
    """(status, error code) for a judgment the schema calls valid that names no image of
    the catalog or asks to tag where a tag cannot go; None when it must be recorded."""
    body = case.body if isinstance(case.body, dict) else {}
    if body.get("image") not in ids:
        return 400, "invalid_judgment"
    if body.get("tag") and (body.get("grade", 0) < 2 or len(" ".join(str(body.get("query", "")).split())) > TAG_MAX_CHARS):
        return 400, "invalid_judgment"
    return None


@pytest.mark.slow  # a text query in hybrid or semantic mode loads the text encoder
@pytest.mark.usefixtures("connection_kept_across_requests")
@pytest.mark.usefixtures("timeout")
def test_no_generated_request_gets_a_500_or_an_answer_outside_the_schema(catalog, curator):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
    # The judgments are sent as a signed-in curator with the CSRF token; schemathesis also
    # sends them without the session to see them refused.
    signed_in = Client()
    signed_in.force_login(curator)
    token = "c" * 32
    cookies = {"sessionid": signed_in.cookies["sessionid"].value, "csrftoken": token}
    cases = st.one_of(
        schema.as_strategy(mode, cookies=cookies, headers={"X-CSRFToken": token}) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )

    ids = [image.id for image in catalog]

    @given(case=cases, data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM, suppress_health_check=list(HealthCheck))
    def check(case, data):
        # Random ids almost never exist, random pages lie beyond the depth and random bytes
        # are no picture: often enough, name real images and early pages and upload a real
        # picture, to reach the answers as well as the refusals. Only in valid requests: an
        # invalid one must stay invalid in the part schemathesis made invalid.
        positive = case.meta.generation.mode.is_positive
        picture = st.just(image_bytes(size=(40, 30)))
        for values, key, kind, real in (
            (case.query, "like", int, st.sampled_from(ids)),
            (case.body, "image", int, st.sampled_from(ids)),
            (case.query, "page", int, st.integers(1, 3)),
            (case.body, "image", bytes, picture),
        ):
            if positive and isinstance(values, dict) and isinstance(values.get(key), kind) and data.draw(st.booleans()):
                values[key] = data.draw(real)
        response = case.call()
        excluded = []
        if positive and response.status_code not in (401, 403):
            if case.operation.path.endswith("/search"):
                refusal = search_refusal(case, unembedded=ids[2])
            else:
                refusal = judgment_refusal(case, ids=ids)
            if refusal:
                assert (response.status_code, response.json().get("error", {}).get("code")) == refusal, (case.query, case.body, response.text[:300])
                excluded.append(positive_data_acceptance)
        # Multipart carries text only: a boolean, number or list generated as "invalid" for a
        # text field arrives as valid text ("false"), repeated fields or nothing at all.
        # Uploads are still checked for 500s and for answers outside the schema.
        if case.media_type == "multipart/form-data":
            excluded.append(negative_data_rejection)
        case.validate_response(response, excluded_checks=excluded)

    check()
