"""The JSON API. Its requests are validated by the schemas below, which also are its
OpenAPI schema (/api/openapi.json, browsable at /api/docs); the search itself is the
site's (search/services.py), so both answer the same query the same way."""
import json
import re
from datetime import date, datetime
from typing import Annotated, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.shortcuts import render
from ninja import File, Form, NinjaAPI, Query, Schema, UploadedFile
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger
from ninja.security import SessionAuth
from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from catalog.models import Image
from config.middleware import api_error
from embeddings.exceptions import NoActiveVersion

from .exceptions import EmptyQuery, InvalidJudgment, InvalidQuery, JudgmentNotAllowed, QueryImageNotFound, UploadTooLarge
from .forms import search_filters
from .judgments import judgment_record
from .selectors import BROWSE_MODE, MODES, Results, search_depth
from .services import SearchQuery, search_run


def spelled(pattern: str, what: str) -> BeforeValidator:
    """Query and form values arrive as text: take only the schema's spelling of them, not
    pydantic's lax extras (a day from "0", a flag from "yes", a number from "1_0")."""
    compiled = re.compile(pattern, re.IGNORECASE | re.ASCII)

    def check(value):
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise PydanticCustomError("spelling", f"use {what}")
        return value

    return BeforeValidator(check)


Day = Annotated[date, spelled(r"\d{4}-\d{2}-\d{2}", "a day as YYYY-MM-DD")]
Flag = Annotated[bool, spelled(r"true|false", "true or false")]
Whole = Annotated[int, spelled(r"-?\d+", "a whole number")]
# Ids are PostgreSQL bigints; text is stored in PostgreSQL, which refuses NUL characters.
# The bounds come before the spelling check: after a BeforeValidator pydantic would publish
# them as unknown "ge"/"le" keys instead of the schema's minimum and maximum.
ImageId = Annotated[int, Field(ge=1, le=2**63 - 1), spelled(r"-?\d+", "a whole number")]


def integral(value):
    """JSON Schema's integer includes 3.0; the strict JSON body takes it as 3, not true or "3"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Grade = Annotated[int, Field(ge=0, le=3, description="0 irrelevant, 1 partly relevant, 2 relevant, 3 perfect"), BeforeValidator(integral)]
NO_NUL = r"^[^\x00]*$"
# Some character other than the whitespace Python's str.split() collapses (which the
# services do to every text): "\f\f" is no query. Spelled out, not \S, because JSON
# Schema's regex dialect and Python disagree on which characters are whitespace.
PYTHON_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SOME_WORD = f"^[^\x00]*[^\x00{PYTHON_WHITESPACE}][^\x00]*$"
# What a failed pattern means, said to the person who sent it.
PATTERN_MESSAGES = {
    NO_NUL: "contains a NUL character, which cannot be stored",
    SOME_WORD: "needs at least one character that is not a space (and no NUL character)",
}


def text_field(max_length: int, *, pattern: str = NO_NUL, **field):
    """Text as sent: lengths are counted before any whitespace is collapsed, as the schema counts them."""
    return Annotated[str, StringConstraints(max_length=max_length, pattern=pattern), Field(**field)]


class SearchParams(Schema):
    q: text_field(settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS, description="words to search for; with a picture, both are ranked together") = ""
    like: ImageId = Field(None, description="more like this image (its id)")
    picture: text_field(64, pattern=r"^[0-9a-f]{64}$", description="an uploaded picture's `picture` from its first page, for the next pages") = ""
    mode: Literal[MODES] = Field(
        None, description="hybrid (default): vectors and full text fused; semantic: vectors only; keyword: full text only, words only"
    )
    category: text_field(200, description="a category path; `animals` holds `animals/housecats`") = ""
    tag: text_field(100, description="comma-separated tags, all of which an image must have") = ""
    created_from: Day = Field(None, description="added on or after this day")
    created_to: Day = Field(None, description="added on or before this day")
    collapse: Flag = Field(False, description="hide near-duplicates of a higher-ranked result")
    distant: Flag = Field(False, description="also show results under the relevance cut-off")
    page: Whole = Field(1, ge=1, description="pages go `depth` results deep")
    limit: Whole = Field(settings.GLIMPSE_SEARCH_PAGE_SIZE, ge=1, le=settings.GLIMPSE_SEARCH_MAX_LIMIT, description="results per page")

    def search_query(self, *, picture: UploadedFile | None = None) -> SearchQuery:
        return SearchQuery(
            text=self.q,
            picture=picture,
            picture_key=self.picture,
            like=self.like,
            mode=self.mode or "",
            filters=search_filters(category=self.category, tag=self.tag, created_from=self.created_from, created_to=self.created_to),
            page=self.page,
            limit=self.limit,
            collapse=self.collapse,
            include_distant=self.distant,
        )


class Hit(Schema):
    id: int
    title: str
    score: float = Field(description="reciprocal rank fusion score")
    relevance: float | None = Field(description="0–1, against the version's calibration; null for picture queries")
    match: Literal["close", "related", "distant", ""] = Field(description="empty for picture queries")
    similarity: float | None = Field(description="the query's cosine with the image's best text-space vector")
    judged: bool = Field(description="a curator graded it relevant for this or a close query")
    category: str
    tags: list[str]
    thumbnail: str
    image: str


class SearchResults(Schema):
    query: str
    mode: Literal[(*MODES, BROWSE_MODE)] = Field(description=f"how the results are ordered; `{BROWSE_MODE}` for filters alone")
    version: int = Field(description="the model version that ranked")
    total: int = Field(description="results reachable by paging: at most `depth`")
    depth: int = Field(description="how deep pages go (GLIMPSE_SEARCH_DEPTH)")
    distant: int = Field(description="results hidden under the relevance cut-off")
    nearest_only: bool = Field(description="nothing passed the cut-off; these are the nearest anyway")
    offset: int
    limit: int
    has_next: bool
    picture: str = Field(description="the query picture's key (its SHA-256), kept a while: send it as `picture` for the next pages")
    latency_ms: float
    results: list[Hit]


class JudgmentIn(Schema):
    # JSON has types of its own: "12" is not an image id, nor true a grade; and a key the
    # schema does not name (a misspelt "grdae") is refused, not silently ignored.
    model_config = ConfigDict(strict=True, extra="forbid")

    query: text_field(settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS, pattern=SOME_WORD, description="the query the result answered")
    image: Annotated[ImageId, BeforeValidator(integral)]
    grade: Grade
    tag: bool = Field(
        False, description="also add the query to the image's tags (grade 2 or 3 only; needs the permission to change images)"
    )


class JudgmentOut(Schema):
    id: int
    query: str
    image: int
    grade: int
    version: int = Field(description="the model version that was serving")
    created_at: datetime
    tags: list[str] = Field(description="the image's tags now")


class ErrorDetail(Schema):
    code: Literal[
        "bad_request",
        "invalid_query",
        "invalid_judgment",
        "not_authenticated",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "too_large",
        "invalid_field",
        "server_error",
        "unavailable",
    ]
    message: str
    field: str | None = Field(description="the parameter at fault, where one is")


class Error(Schema):
    error: ErrorDetail


class CuratorSession(SessionAuth):
    """The session of a user signed in through /admin/login/; its writes need the CSRF
    token (X-CSRFToken), as the site's forms do."""

    def __call__(self, request):
        # Who asks comes first: a stranger is told to sign in (401), not about CSRF tokens.
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


class Docs(Swagger):
    """Swagger UI from the app's own static files (no CDN: sites behind firewalls), whose
    "Try it out" sends the CSRF token, so that a signed-in curator can record judgments."""

    def render_page(self, request, api, **kwargs):
        options = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        return render(request, self.template, {"swagger_settings": json.dumps(options), "api": api, "add_csrf": True})


api = NinjaAPI(
    title="Glimpse",
    version="1",
    docs=Docs(),
    description="Image search by words, by picture and by example. Errors share one shape: "
    '`{"error": {"code": …, "message": …, "field": …}}`.',
    urls_namespace="api",
)

SEARCH_ERRORS = {400: Error, 404: Error, 413: Error, 422: Error, 503: Error}


def search_answer(request, params: SearchParams, results: Results) -> dict:
    return {
        "query": params.q,
        "mode": results.mode,
        "version": results.version.number,
        "total": results.total,
        "depth": search_depth(),
        "distant": results.distant,
        "nearest_only": results.nearest_only,
        "offset": results.offset,
        "limit": results.limit,
        "has_next": results.has_next,
        "picture": results.picture,
        "latency_ms": round(results.latency_ms, 2),
        "results": [
            {
                "id": hit.image.id,
                "title": hit.image.title,
                "score": round(hit.score, 6),
                "relevance": None if hit.relevance is None else round(hit.relevance, 2),
                "match": hit.label,
                "similarity": None if hit.similarity is None else round(hit.similarity, 4),
                "judged": hit.judged,
                "category": hit.image.category,
                "tags": hit.image.tags,
                "thumbnail": request.build_absolute_uri(hit.image.thumbnail.url),
                "image": request.build_absolute_uri(hit.image.file.url),
            }
            for hit in results.hits
        ],
    }


@api.get("/search", response={200: SearchResults, **SEARCH_ERRORS}, summary="Search by words or by example")
def search(request, params: Query[SearchParams]):
    """Words (`q`), more like an image (`like`), or both, ranked together; filters alone
    (`category`, `tag`, `created_from`, `created_to`) list what they let through, newest
    first (`mode`: `newest`). A request with none of these is refused with 422 (`field`:
    `q`); a page that starts beyond `depth`, or `created_from` after `created_to`, with 400."""
    return search_answer(request, params, search_run(query=params.search_query()))


# HEAD answers wherever GET does (its body is dropped on the way out); the schema need not say so.
api.api_operation(["HEAD"], "/search", response={200: SearchResults, **SEARCH_ERRORS}, include_in_schema=False)(search)


@api.post("/search", response={200: SearchResults, **SEARCH_ERRORS}, summary="Search by an uploaded picture")
def search_by_picture(request, params: Form[SearchParams], image: File[UploadedFile] = None):
    """An uploaded picture (`image`), alone or with words (`q`), or any search of the GET form as a form post.
    A request with no picture, words or `like` is refused with 422 (`field`: `q`). Every
    parameter is a form field of the body: one in the URL, or a body that is not a form
    (JSON), is refused with 400."""
    form_post_check(request)
    return search_answer(request, params, search_run(query=params.search_query(picture=image)))


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def form_post_check(request) -> None:
    """A posted search reads the form in its body only; a parameter sent elsewhere would be
    ignored without a word, so it is refused."""
    if request.content_type not in FORM_TYPES and request.body:
        raise HttpError(400, f"send the search as multipart/form-data (a picture and form fields), not {request.content_type or 'a body without a Content-Type'}")
    misplaced = [name for name in SearchParams.model_fields if name in request.GET]
    if misplaced:
        raise HttpError(400, f"send {', '.join(misplaced)} as form fields of the posted body, with the picture, not in the URL")


@api.post(
    "/judgments",
    auth=CuratorSession(),
    response={200: JudgmentOut, 400: Error, 401: Error, 403: Error, 422: Error, 503: Error},
    summary="Grade a result for a query",
)
def judgment(request, payload: JudgmentIn):
    """A curator's grade of an image for a text query; a new grade replaces the curator's
    current one, which is kept as history. Needs a signed-in user with the judge permission."""
    judged = judgment_record(curator=request.auth, image_id=payload.image, grade=payload.grade, query_text=payload.query, tag=payload.tag)
    return {
        "id": judged.id,
        "query": judged.query_text,
        "image": judged.image_id,
        "grade": judged.grade,
        "version": judged.version.number,
        "created_at": judged.created_at,
        "tags": Image.objects.get(id=judged.image_id).tags,
    }


def refused(status: int, code: str = ""):
    return lambda request, error: api_error(status, str(error), code=code)


@api.exception_handler(EmptyQuery)
def empty_query(request, error: EmptyQuery):
    # The one rule the schema cannot say (q, like or image, any of them): refused like a missing field.
    return api_error(422, f"q: {error}", field="q")


for error_class, status, code in (
    (InvalidQuery, 400, "invalid_query"),
    (InvalidJudgment, 400, "invalid_judgment"),
    (JudgmentNotAllowed, 403, ""),
    (QueryImageNotFound, 404, ""),
    (Http404, 404, ""),
    (UploadTooLarge, 413, ""),
    (RequestDataTooBig, 413, ""),
    (NoActiveVersion, 503, ""),
):
    api.add_exception_handler(error_class, refused(status, code))


@api.exception_handler(ValidationError)
def invalid_field(request, error: ValidationError):
    first = error.errors[0]
    # ("query", "limit"), ("form", "q"), ("body", "payload", "grade"): where, then which.
    where, *names = first.get("loc") or ("",)
    names = [name for name in names[1 if where == "body" else 0 :] if isinstance(name, str)]
    field = names[-1] if names else None
    message = PATTERN_MESSAGES.get((first.get("ctx") or {}).get("pattern"), first["msg"])
    return api_error(422, f"{field}: {message}" if field else message, field=field)


@api.exception_handler(AuthenticationError)
def not_authenticated(request, error: AuthenticationError):
    return api_error(401, "sign in first (/admin/login/), then send the session cookie")


@api.exception_handler(HttpError)
def http_error(request, error: HttpError):
    return api_error(error.status_code, str(error))


@api.exception_handler(Exception)
def unexpected(request, error: Exception):
    # Outages become a 503 (config/middleware.py) and bugs a logged 500, as on every other page.
    raise error
