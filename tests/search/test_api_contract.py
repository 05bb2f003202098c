"""Property-based: generated requests, valid and invalid by the schema, for every operation
of the API, against the real application (in process, over WSGI) and the real database.
No answer may be a 500 or break the schema."""
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.generation import GenerationMode

from config.wsgi import application
from tests.conftest import unit
from tests.timeouts import timeout  # noqa: F401

# Enough to reach every parameter in both modes, small enough to finish within a minute here.
EXAMPLES = 200


@pytest.fixture
def catalog(make_images):
    return make_images(
        [
            {"title": "Red apple", "category": "food", "tags": ("fruit",), "image_vector": unit(1, 0.1)},
            {"title": "Guitar", "category": "music", "image_vector": unit(0, 1)},
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
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case, data):
        # Random ids almost never exist and random pages lie beyond the depth: often enough,
        # name real images and early pages, to reach the answers as well as the refusals.
        for values, key, real in ((case.query, "like", st.sampled_from(ids)), (case.body, "image", st.sampled_from(ids)), (case.query, "page", st.integers(1, 3))):
            if isinstance(values, dict) and isinstance(values.get(key), int) and data.draw(st.booleans()):
                values[key] = data.draw(real)
        response = case.call()
        # What the schema cannot say: a search needs words or a picture, a `like` image must
        # exist, a page must start within the depth; those valid-looking requests get a 4xx.
        excluded = [positive_data_acceptance]
        # Multipart carries text only: a boolean, number or list generated as "invalid" for a
        # text field arrives as valid text ("false"), repeated fields or nothing at all.
        # Uploads are still checked for 500s and for answers outside the schema.
        if case.media_type == "multipart/form-data":
            excluded.append(negative_data_rejection)
        case.validate_response(response, excluded_checks=excluded)

    check()
