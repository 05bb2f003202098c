import importlib.util
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import URLPattern, include, path, re_path
from django.views.static import serve
from django_rq.settings import get_queues_list
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns
from rq.exceptions import NoSuchJobError

from search import dashboard
from search.api import api

# django-rq lets any staff user see the queues and empty, requeue or delete jobs.
# Its dashboard needs this permission (superusers have it; grant it to other staff).
RQ_PERMISSION = "django_rq.admin"


def rq_permission_required(view):
    @wraps(view)
    def checked(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff and request.user.has_perm(RQ_PERMISSION)):
            raise PermissionDenied
        return rq_not_found_as_404(view)(request, *args, **kwargs)

    return checked


def rq_not_found_as_404(view):
    """django-rq answers a queue, worker or job that does not exist with a server error
    (an IndexError, a NoSuchJobError, a ValueError) and its scheduler pages without
    rq-scheduler with ImproperlyConfigured: here they are 404s."""

    @wraps(view)
    def found(request, *args, **kwargs):
        if "scheduler_index" in kwargs:
            if importlib.util.find_spec("rq_scheduler") is None:
                raise Http404("the scheduler pages need rq-scheduler, which this site does not use (its cron is `manage.py scheduler`)")
        for name in ("queue_index", "scheduler_index"):
            if name in kwargs and not 0 <= kwargs[name] < len(get_queues_list()):
                raise Http404(f"there is no queue {kwargs[name]}")
        try:
            return view(request, *args, **kwargs)
        except NoSuchJobError as error:
            raise Http404(str(error)) from None
        except ValueError:
            if "key" not in kwargs:
                raise
            raise Http404(f"there is no worker {kwargs['key']}") from None

    return found


# All of them, the JSON stats too (they would admit any staff user; no RQ_API_TOKEN is set here).
rq_urls = (
    [
        URLPattern(pattern.pattern, rq_permission_required(pattern.callback), pattern.default_args, pattern.name)
        for pattern in get_api_urlpatterns() + get_admin_urlpatterns()
    ],
    "django_rq",
)

urlpatterns = [
    path("admin/rq/", include(rq_urls)),
    path("admin/analytics/", admin.site.admin_view(dashboard.analytics_dashboard), name="analytics"),
    path("admin/analytics/<slug:slug>.csv", admin.site.admin_view(dashboard.analytics_csv), name="analytics_csv"),
    path("admin/", admin.site.urls),
    # The JSON API, with its schema at /api/openapi.json and its docs at /api/docs.
    path("api/", api.urls),
    path("", include("search.urls")),
]

if settings.GLIMPSE_SERVE_MEDIA:
    # Development, `make demo` and tests; in production the web server in front serves /media/ (docker/nginx.conf).
    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))
