import io
import logging
from contextlib import nullcontext

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from catalog.imaging import megabytes
from config import supervision
from config.routers import replica_reads

logger = logging.getLogger("glimpse")

RETRY_AFTER_SECONDS = 5

# The JSON API's one error shape: {"error": {"code": …, "message": …, "field": … or null}}.
ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_field",
    500: "server_error",
    503: "unavailable",
}


def api_error(status: int, message: str, *, code: str = "", field: str | None = None) -> JsonResponse:
    code = code or ERROR_CODES.get(status, "error")
    return JsonResponse({"error": {"code": code, "message": message, "field": field}}, status=status)


def api_request(request) -> bool:
    return request.path_info.startswith("/api/")


class ApiErrorMiddleware:
    """Errors under /api/ that Django or the API library answer by themselves (an unknown
    path, a method the endpoint lacks, a server error) get the API's one JSON error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not api_request(request) or response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code == 404:
            return api_error(404, f"there is no API endpoint at {request.path_info}")
        if response.status_code == 405:
            allowed = response.get("Allow", "")
            refused = api_error(405, f"{request.method} is not allowed here; use {allowed}")
            refused["Allow"] = allowed
            return refused
        return api_error(response.status_code, response.reason_phrase)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Glimpse is briefly unavailable</title></head>
<body><h1>Glimpse is briefly unavailable</h1><p>{reason} Please try again in a few seconds.</p></body></html>
"""


class ServiceUnavailableMiddleware:
    """A request that meets a database or Redis outage gets a plain 503 with Retry-After
    (JSON under /api/), never a traceback, and a dead embedded server is started again.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, supervision.DATABASE_ERRORS):
            # A connection that lost its server never works again; the next request opens a new one.
            connection.close()
            if supervision.database_unreachable(exception):
                supervision.database_revive()
            reason = "Its database is not answering."
        elif isinstance(exception, supervision.REDIS_ERRORS):
            supervision.redis_revive()
            reason = "Its job queue is not answering."
        else:
            return None
        logger.warning("%s %s: 503, %s (%s)", request.method, request.path, reason, supervision.first_line(exception))
        if api_request(request):
            response = api_error(503, f"{reason} Try again in a few seconds.")
        else:
            response = HttpResponse(PAGE.format(reason=reason), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class ReplicaReadsMiddleware:
    """GET and HEAD requests to the search pages and API read from a replica (config/routers.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with replica_reads() if self.reads_search(request) else nullcontext():
            return self.get_response(request)

    @staticmethod
    def reads_search(request) -> bool:
        if request.method not in ("GET", "HEAD"):
            return False
        try:
            return resolve(request.path_info).namespace in ("search", "api")
        except Resolver404:
            return False


class RequestBodyLimitMiddleware:
    """Without a proxy in front (nginx's client_max_body_size), Django would read a 300 MB
    upload and spool it to disk before any view refused it. A body over
    GLIMPSE_MAX_REQUEST_BYTES is refused by its Content-Length before a byte of it is read;
    a chunked body, which has none, is read up to the limit and refused past it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.GLIMPSE_MAX_REQUEST_BYTES
        length = request.META.get("CONTENT_LENGTH")
        if length:
            if not length.isdigit():
                return refused(request, 400, f"Content-Length must be a number of bytes, not {length[:20]!r}")
            if int(length) > limit:
                return refused(request, 413, f"the request is {megabytes(int(length))}; the limit is {megabytes(limit)}")
        elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = request.META["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return refused(request, 413, f"the request is over the limit of {megabytes(limit)}")
            # Django reads no body without a Content-Length: it is given the one read here.
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))
        return self.get_response(request)


def refused(request, status: int, reason: str) -> HttpResponse:
    logger.warning("%s %s: %s, %s", request.method, request.path, status, reason)
    if api_request(request):
        return api_error(status, reason)
    return render(request, f"{status}.html", {"reason": reason}, status=status)
