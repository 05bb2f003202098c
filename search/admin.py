import django_rq
from django.contrib import admin, messages
from django.utils.html import format_html

from embeddings.admin import ModelVersionAdmin
from embeddings.models import ModelVersion
from embeddings.services import TRAINING_QUEUE

from .jobs import train_version
from .judgments import judgment_record
from .models import QueryLog, RelevanceJudgment

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


@admin.register(RelevanceJudgment)
class RelevanceJudgmentAdmin(admin.ModelAdmin):
    list_display = ["query_text", "preview", "grade", "curator", "version", "is_current", "created_at"]
    list_filter = ["grade", "is_current", "curator", "version"]
    search_fields = ["query_text", "query_key", "image__title"]
    actions = [regrade(grade) for grade in range(4)]
    readonly_fields = [field.name for field in RelevanceJudgment._meta.fields]
    list_select_related = ["image", "curator", "version"]

    def has_add_permission(self, request):
        return False  # judgments come from the search page, where the results are

    def has_change_permission(self, request, obj=None):
        return False  # a changed grade is a new row; use the regrade actions

    @admin.display(description="image")
    def preview(self, judgment):
        return format_html('<img src="{}" alt="" style="max-height:48px">', judgment.image.thumbnail.url)


@admin.register(QueryLog)
class QueryLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "text", "mode", "total", "latency_ms", "version"]
    list_filter = ["kind", "mode", "version"]
    search_fields = ["text"]
    readonly_fields = [field.name for field in QueryLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TrainableModelVersionAdmin(ModelVersionAdmin):
    """The versions page, plus starting a training run (search supplies the judgments)."""

    actions = ModelVersionAdmin.actions + ["train_now"]

    @admin.action(description="Train a new version from the judgments now")
    def train_now(self, request, queryset):
        django_rq.get_queue(TRAINING_QUEUE).enqueue(train_version, job_timeout=6 * 3600)
        self.message_user(request, "Training queued; the new version appears here when it finishes.", messages.SUCCESS)


admin.site.unregister(ModelVersion)
admin.site.register(ModelVersion, TrainableModelVersionAdmin)
