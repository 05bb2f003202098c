import logging
from contextlib import nullcontext

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from config import supervision
from config.routers import replica_reads

logger = logging.getLogger("glimpse")

RETRY_AFTER_SECONDS = 5

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
        if request.path_info.startswith("/api/"):
            response = JsonResponse({"error": f"{reason} Try again in a few seconds."}, status=503)
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
            return resolve(request.path_info).namespace == "search"
        except Resolver404:
            return False
