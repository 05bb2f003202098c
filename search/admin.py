import django_rq
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from catalog.models import TAG_MAX_CHARS, Image
from catalog.services import image_tags_add
from embeddings.admin import ImageWithSuggestionsAdmin, ModelVersionAdmin
from embeddings.models import ModelVersion
from embeddings.services import TRAINING_QUEUE

from .exceptions import TooFewJudgments
from .jobs import train_version
from .judgments import PERMISSION, TAG_PERMISSION, judgment_record, tag_problem, training_check
from .models import QueryLog, RelevanceJudgment

# Query text shown in the query-log list; the whole of it is in the cell's title.
QUERY_CHARS_LISTED = 40

# The index links to the analytics page (search/dashboard.py).
admin.site.index_template = "admin/analytics/admin_index.html"


def regrade(grade: int):
    @admin.action(description=f"Regrade selected as {grade} (keeps history)")
    def action(modeladmin, request, queryset):
        count = 0
        for judgment in queryset.filter(is_current=True):
            judgment_record(
                curator=request.user,
                image_id=judgment.image_id,
                grade=grade,
                query_text=judgment.query_text,
                query_image_hash=judgment.query_image_hash,
                query_vector=judgment.query_vector,
            )
            count += 1
        modeladmin.message_user(request, f"{count} results regraded as {grade} in your name.", messages.SUCCESS)

    action.__name__ = f"regrade_{grade}"
    return action


@admin.action(description="Tag the images with their queries (current grades 2 and 3 of queries in words)", permissions=["tag"])
def tag_with_query(modeladmin, request, queryset):
    """The judging page's "tag" box, for judgments already made: the curator's words become
    the image's own, and it is re-embedded."""
    tagged = skipped = 0
    for judgment in queryset.filter(is_current=True).order_by("id"):
        if tag_problem(grade=judgment.grade, query_text=judgment.query_text, query_image_hash=judgment.query_image_hash):
            skipped += 1
            continue
        tagged += bool(image_tags_add(image_id=judgment.image_id, tags=[judgment.query_text]))
    message = f"{tagged} images took their query as a new tag and were queued for embedding."
    if skipped:
        message += f" {skipped} judgments were left alone: graded below 2, a picture query, or a query over {TAG_MAX_CHARS} characters."
    modeladmin.message_user(request, message, messages.SUCCESS)


@admin.register(RelevanceJudgment)
class RelevanceJudgmentAdmin(admin.ModelAdmin):
    list_display = ["query_text", "preview", "grade", "curator", "version", "is_current", "created_at"]
    list_filter = ["grade", "is_current", "curator", "version"]
    search_fields = ["query_text", "query_key", "image__title"]
    actions = [*(regrade(grade) for grade in range(4)), tag_with_query]
    readonly_fields = [field.name for field in RelevanceJudgment._meta.fields]
    list_select_related = ["image", "curator", "version"]

    def has_add_permission(self, request):
        return False  # judgments come from the search page, where the results are

    def has_change_permission(self, request, obj=None):
        return False  # a changed grade is a new row; use the regrade actions

    def has_tag_permission(self, request):
        return request.user.has_perm(TAG_PERMISSION)

    def has_view_permission(self, request, obj=None):
        # A curator sees and regrades their own judgments without being granted everyone's.
        return super().has_view_permission(request, obj) or request.user.has_perm(PERMISSION)

    def get_queryset(self, request):
        judgments = super().get_queryset(request)
        return judgments if super().has_view_permission(request) else judgments.filter(curator=request.user)

    @admin.display(description="image")
    def preview(self, judgment):
        return format_html('<img src="{}" alt="" style="max-height:48px">', judgment.image.thumbnail.url)


@admin.register(QueryLog)
class QueryLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "query", "mode", "total", "latency", "version_number"]
    list_filter = ["kind", "mode", "version"]
    search_fields = ["text"]
    readonly_fields = [field.name for field in QueryLog._meta.fields]
    list_select_related = ["version"]

    @admin.display(description="query", ordering="text")
    def query(self, log: QueryLog):
        return format_html('<span title="{}">{}</span>', log.text, Truncator(log.text).chars(QUERY_CHARS_LISTED)) if log.text else "—"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, log: QueryLog):
        return f"{log.latency_ms:.0f}\N{NO-BREAK SPACE}ms"  # never split over two lines

    @admin.display(description="version", ordering="version__number")
    def version_number(self, log: QueryLog):
        return f"v{log.version.number}"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TrainableModelVersionAdmin(ModelVersionAdmin):
    """The versions page, plus a button that starts a training run (search supplies the
    judgments): a run concerns no existing version, so it is not an action on selected rows."""

    change_list_template = "admin/search/modelversion_change_list.html"
    readonly_fields = [*ModelVersionAdmin.readonly_fields, "grades_reach_visitors"]

    @admin.display(description="how curators' grades reach visitors")
    def grades_reach_visitors(self, version):
        return (
            f"At once, for the graded query and queries close to it (cosine ≥ {settings.GLIMPSE_JUDGED_QUERY_SIMILARITY}): "
            "pictures graded 1 or more are ranked higher; a picture graded 0 is hidden from visitors only once "
            f"{settings.GLIMPSE_HIDE_AFTER_CURATORS} curator(s) graded it 0 there and none higher (curators still see it, "
            "marked, with their grade, and can regrade it). "
            "Later, through training: every grade teaches the next version, which serves only if it is released; "
            "a version kept back changes nothing that visitors see."
        )

    def get_urls(self):
        train = self.admin_site.admin_view(require_POST(self.train_now))
        return [path("train/", train, name="embeddings_modelversion_train"), *super().get_urls()]

    def train_now(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        try:
            training_check()
        except TooFewJudgments as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            django_rq.get_queue(TRAINING_QUEUE).enqueue(train_version, job_timeout=6 * 3600)
            self.message_user(request, "Training queued; the new version appears here when it finishes.", messages.SUCCESS)
        return redirect(reverse("admin:embeddings_modelversion_changelist"))


# The pages several apps add to are registered here, in the most downstream app, once each:
# catalog's image page with embeddings' suggested tags and read words, embeddings'
# versions page with search's training button. The apps upstream register none of them.
admin.site.register(Image, ImageWithSuggestionsAdmin)
admin.site.register(ModelVersion, TrainableModelVersionAdmin)
