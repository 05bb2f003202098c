from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog.admin import ImageAdmin
from catalog.models import Image
from catalog.services import image_tags_add

from .exceptions import NoActiveVersion, VersionStateError
from .models import ModelVersion
from .selectors import image_suggested_tags
from .services import version_drop_vectors, version_start_release


def curve_svg(curve: list[dict], key: str, *, width: int = 420, height: int = 120) -> str:
    """A plain SVG line of one curve column (no plotting library in the web process)."""
    points = [(row["epoch"], row[key]) for row in curve if key in row]
    if len(points) < 2:
        return ""
    low, high = min(value for _, value in points), max(value for _, value in points)
    span = (high - low) or 1.0
    last = points[-1][0]
    coordinates = " ".join(
        f"{10 + (epoch - 1) / max(last - 1, 1) * (width - 20):.1f},{10 + (1 - (value - low) / span) * (height - 30):.1f}"
        for epoch, value in points
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="{key} per epoch" style="background:#fff;border:1px solid #ddd">'
        f'<polyline fill="none" stroke="#2456d6" stroke-width="2" points="{coordinates}"/>'
        f'<text x="10" y="{height - 6}" font-size="11">{key}: {points[0][1]:.4f} → {points[-1][1]:.4f} over {last} epochs</text></svg>'
    )


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["number", "kind", "state", "held_out_ndcg", "active_ndcg", "embedding_count", "created_at", "activated_at"]
    list_filter = ["state", "kind"]
    readonly_fields = [
        "number", "kind", "state", "image_model", "text_model", "dimensions", "trained_from", "notes",
        "training_curve", "held_out_table", "counts", "created_at", "activated_at", "retired_at", "vectors_dropped",
    ]
    exclude = ["metrics", "weights"]
    actions = ["release", "drop_vectors"]

    def has_add_permission(self, request):
        return False  # versions come from training

    def has_delete_permission(self, request, obj=None):
        return False  # retire and drop vectors instead; judgments and logs refer to versions

    @admin.display(description="held-out nDCG@10")
    def held_out_ndcg(self, version):
        return version.metrics.get("held_out", {}).get("candidate", {}).get("nDCG@10", "—")

    @admin.display(description="active's nDCG@10 then")
    def active_ndcg(self, version):
        held_out = version.metrics.get("held_out", {})
        return next((value["nDCG@10"] for key, value in held_out.items() if key.startswith("active")), "—")

    @admin.display(description="vectors")
    def embedding_count(self, version):
        return version.embeddings.count()

    @admin.display(description="training curve")
    def training_curve(self, version):
        curve = version.metrics.get("curve", [])
        return mark_safe(curve_svg(curve, "loss") + " " + curve_svg(curve, "held_out_nDCG@10")) if curve else "—"

    @admin.display(description="held-out judgments")
    def held_out_table(self, version):
        held_out = version.metrics.get("held_out")
        if not held_out:
            return "—"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((name, m["nDCG@10"], m["Recall@10"], m["MRR"], m["queries"]) for name, m in held_out.items()),
        )
        return format_html("<table><tr><th></th><th>nDCG@10</th><th>Recall@10</th><th>MRR</th><th>queries</th></tr>{}</table>", rows)

    @admin.display(description="counts")
    def counts(self, version):
        return ", ".join(f"{key}: {value}" for key, value in version.metrics.get("counts", {}).items()) or "—"

    @admin.action(description="Release / roll back to the selected version (backfills, then switches)")
    def release(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to release.", messages.ERROR)
            return
        version = queryset.get()
        try:
            version_start_release(version=version)
        except VersionStateError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"v{version.number} is backfilling; searches switch to it when it is complete.", messages.SUCCESS)

    @admin.action(description="Drop the vectors of the selected retired versions")
    def drop_vectors(self, request, queryset):
        for version in queryset:
            try:
                self.message_user(request, f"v{version.number}: {version_drop_vectors(version=version)} vectors dropped.", messages.SUCCESS)
            except VersionStateError as error:
                self.message_user(request, str(error), messages.ERROR)


class ImageWithSuggestionsAdmin(ImageAdmin):
    """The catalog's image page, plus tags suggested by the visually nearest described
    images; they become the image's own only when a curator accepts them."""

    readonly_fields = ImageAdmin.readonly_fields + ["suggested_tags"]
    fields = ImageAdmin.fields[:4] + ["suggested_tags"] + ImageAdmin.fields[4:]
    actions = ImageAdmin.actions + ["accept_suggested_tags"]

    @admin.display(description="suggested tags")
    def suggested_tags(self, image: Image):
        try:
            suggestions = image_suggested_tags(image_id=image.id)
        except NoActiveVersion:
            return "—"
        if not suggestions:
            return "— (no described image looks like this one yet, or it has no vectors)"
        return format_html_join(", ", "{} <small>({})</small>", ((tag, f"{weight:.2f}") for tag, weight in suggestions))

    @admin.action(description="Accept the suggested tags of the selected images")
    def accept_suggested_tags(self, request, queryset):
        changed = 0
        try:
            for image_id in queryset.values_list("id", flat=True):
                tags = [tag for tag, _ in image_suggested_tags(image_id=image_id)]
                changed += bool(image_tags_add(image_id=image_id, tags=tags))
        except NoActiveVersion as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"{changed} images got suggested tags and were queued for embedding.", messages.SUCCESS)


admin.site.unregister(Image)
admin.site.register(Image, ImageWithSuggestionsAdmin)
