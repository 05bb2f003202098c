from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog.admin import ImageAdmin
from catalog.models import Image
from catalog.services import image_tags_add

from .charts import line_chart_svg
from .exceptions import NoActiveVersion, VersionStateError
from .models import ModelVersion
from .picture_text import picture_text_correct, picture_text_dismiss, picture_text_reread
from .selectors import image_suggested_tags
from .services import version_drop_vectors, version_start_release

KEPT_BACK = "kept back (never served)"


def lifecycle(version: ModelVersion) -> str:
    """The state as a curator reads it: a retired version that never served was kept back
    by its held-out comparison (or stopped before release), not retired from service."""
    if version.state == ModelVersion.State.RETIRED and version.activated_at is None:
        return KEPT_BACK
    return version.state


# While a version trains, its page reloads itself this often (seconds) to show the progress.
PROGRESS_REFRESH_S = 5


def duration(seconds: int) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def training_progress(version: ModelVersion) -> str:
    """"epoch 3 of 15, 1 min 4 s elapsed, about 4 min 16 s left" while a run trains the
    version (training_run writes it to the row); "" once it is done."""
    progress = version.metrics.get("progress")
    if version.state != ModelVersion.State.TRAINING or not progress:
        return ""
    done = f"epoch {progress['epoch']} of {progress['epochs']}" if progress["stage"] == "training" else progress["stage"]
    left = f", about {duration(progress['eta_s'])} left" if progress["stage"] == "training" and progress["eta_s"] is not None else ""
    return f"{done}, {duration(progress['elapsed_s'])} elapsed{left}"


def metric(values: dict | None, name: str) -> str:
    """A held-out figure, or "—" where there is none: a comparison on no query is not a 0."""
    if not values or not values.get("queries") or values.get(name) is None:
        return "—"
    return f"{values[name]:.4f}"


class LifecycleFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("kept_back", KEPT_BACK), ("retired", "retired"), ("training", "training or backfilling")]

    def queryset(self, request, queryset):
        retired = queryset.filter(state=ModelVersion.State.RETIRED)
        return {
            "active": queryset.filter(state=ModelVersion.State.ACTIVE),
            "kept_back": retired.filter(activated_at__isnull=True),
            "retired": retired.filter(activated_at__isnull=False),
            "training": queryset.filter(state__in=[ModelVersion.State.TRAINING, ModelVersion.State.BACKFILLING]),
        }.get(self.value(), queryset)


class ModelVersionAdmin(admin.ModelAdmin):
    """The versions page; search/admin.py registers it with the training button."""

    list_display = ["number", "kind", "status", "held_out_ndcg", "active_ndcg", "embedding_count", "created_at", "activated_at"]
    list_filter = [LifecycleFilter, "kind"]
    readonly_fields = [
        "number", "kind", "status", "progress", "image_model", "text_model", "multilingual_text_model", "dimensions", "precision", "borrowed_share", "trained_from", "notes",
        "training_curve", "held_out_table", "release_gate", "counts", "created_at", "activated_at", "retired_at", "vectors_dropped",
    ]
    # The state is shown as "status"; it changes only through the lifecycle actions.
    exclude = ["state", "metrics", "weights"]
    actions = ["release", "drop_vectors"]

    def has_add_permission(self, request):
        return False  # versions come from training

    def has_delete_permission(self, request, obj=None):
        return False  # retire and drop vectors instead; judgments and logs refer to versions

    def has_change_permission(self, request, obj=None):
        # A version's own page is a read-only view (no form, a POST is refused); the change
        # permission on the list is what allows the lifecycle actions and training.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="status", ordering="state")
    def status(self, version):
        progress = training_progress(version)
        return f"{lifecycle(version)} ({progress})" if progress else lifecycle(version)

    @admin.display(description="progress")
    def progress(self, version):
        progress = training_progress(version)
        if not progress:
            return "—"
        # A meta refresh works in the body too: the page shows the next epoch without a click.
        return format_html('{} <meta http-equiv="refresh" content="{}">', progress, PROGRESS_REFRESH_S)

    @admin.display(description="held-out nDCG@10")
    def held_out_ndcg(self, version):
        return metric(version.metrics.get("held_out", {}).get("candidate"), "nDCG@10")

    @admin.display(description="active's nDCG@10 then")
    def active_ndcg(self, version):
        held_out = version.metrics.get("held_out", {})
        return metric(next((value for key, value in held_out.items() if key.startswith("active")), None), "nDCG@10")

    @admin.display(description="vectors")
    def embedding_count(self, version):
        return version.embeddings.count()

    @admin.display(description="training curve")
    def training_curve(self, version):
        curve = version.metrics.get("curve", [])
        held_out = [(row["epoch"], row["held_out_nDCG@10"]) for row in curve if row.get("held_out_nDCG@10") is not None]
        charts = [
            line_chart_svg(held_out, title="held-out nDCG@10 per epoch", x_label="epoch", y_label="nDCG@10", mark_best=True),
            line_chart_svg([(row["epoch"], row["loss"]) for row in curve if "loss" in row], title="training loss per epoch", x_label="epoch", y_label="loss"),
        ]
        drawn = [chart for chart in charts if chart]
        return mark_safe(" ".join(drawn)) if drawn else "—"

    @admin.display(description="held-out judgments")
    def held_out_table(self, version):
        held_out = version.metrics.get("held_out")
        if not held_out:
            return "—"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((name, metric(m, "nDCG@10"), metric(m, "Recall@10"), metric(m, "MRR"), m.get("queries", 0)) for name, m in held_out.items()),
        )
        return format_html("<table><tr><th></th><th>nDCG@10</th><th>Recall@10</th><th>MRR</th><th>queries</th></tr>{}</table>", rows)

    @admin.display(description="release gate")
    def release_gate(self, version):
        gate = version.metrics.get("gate")
        if not gate:
            return "—"
        rows = format_html_join(
            "", "<tr><th>fold {}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (number, fold["queries"], f"{fold['candidate']:.4f}", f"{fold['active']:.4f}", f"{fold['gain']:+.4f}")
                for number, fold in enumerate(gate["folds"], start=1)
            ),
        )
        return format_html(
            "<p>{}: {}. Gain over all held-out queries {}; the margin was met in {} of {} folds.</p>"
            "<table><tr><th></th><th>queries</th><th>this version</th><th>active then</th><th>gain</th></tr>{}</table>",
            "released" if gate["released"] else "not released", gate["rule"], f"{gate['gain']:+.4f}", gate["folds_won"], len(gate["folds"]), rows,
        )

    @admin.display(description="counts")
    def counts(self, version):
        return ", ".join(f"{key}: {value}" for key, value in version.metrics.get("counts", {}).items()) or "—"

    @admin.action(description="Release / roll back to the selected version (backfills, then switches)", permissions=["change"])
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

    @admin.action(description="Drop the vectors of the selected retired versions", permissions=["change"])
    def drop_vectors(self, request, queryset):
        for version in queryset:
            try:
                self.message_user(request, f"v{version.number}: {version_drop_vectors(version=version)} vectors dropped.", messages.SUCCESS)
            except VersionStateError as error:
                self.message_user(request, str(error), messages.ERROR)


PICTURE_TEXT_FIELDS = ["picture_text", "picture_text_state", "read_lines", "picture_text_reader", "picture_text_error"]


class ImageWithSuggestionsAdmin(ImageAdmin):
    """The catalog's image page, plus tags suggested by the visually nearest described
    images (they become the image's own only when a curator accepts them) and the words
    read in the picture, which a curator corrects by editing them or dismisses by
    emptying them; either stands through later readings."""

    readonly_fields = ImageAdmin.readonly_fields + ["suggested_tags", "picture_text_state", "read_lines", "picture_text_reader", "picture_text_error"]
    fields = ImageAdmin.fields[:4] + ["suggested_tags"] + PICTURE_TEXT_FIELDS + ImageAdmin.fields[4:]
    actions = ImageAdmin.actions + ["accept_suggested_tags", "dismiss_picture_text", "read_picture_text_again"]
    list_filter = ImageAdmin.list_filter + ["picture_text_state"]
    search_fields = ImageAdmin.search_fields + ["picture_text"]

    def save_model(self, request, obj, form, change):
        corrected = change and "picture_text" in form.changed_data
        if corrected:
            text = obj.picture_text
            obj.picture_text = form.initial.get("picture_text", "")  # stored by the service, with its glyphs and vector
        super().save_model(request, obj, form, change)
        if corrected:
            picture_text_correct(image=obj, text=text)

    @admin.display(description="lines read")
    def read_lines(self, image: Image):
        if not image.picture_text_lines:
            return "—"
        return format_html_join(
            mark_safe("<br>"), "{} <small>(confidence {})</small>", ((line["text"], f"{line['confidence']:.2f}") for line in image.picture_text_lines)
        )

    @admin.action(description="Dismiss the words read in the selected pictures")
    def dismiss_picture_text(self, request, queryset):
        for image in queryset:
            picture_text_dismiss(image=image)
        self.message_user(request, f"The words read in {queryset.count()} pictures are dismissed: search no longer finds them by those words.", messages.SUCCESS)

    @admin.action(description="Read the words in the selected pictures again (drops corrections)")
    def read_picture_text_again(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        picture_text_reread(image_ids=ids)
        self.message_user(request, f"{len(ids)} pictures queued for reading.", messages.SUCCESS)

    @admin.display(description="suggested tags")
    def suggested_tags(self, image: Image):
        try:
            suggestions = image_suggested_tags(image_id=image.id)
        except NoActiveVersion:
            return "—"
        if suggestions:
            return format_html_join(", ", "{} <small>({})</small>", ((tag, f"{weight:.2f}") for tag, weight in suggestions))
        if image.embedding_status != Image.EmbeddingStatus.READY:
            return "— (not embedded yet: suggestions come from the described pictures its vectors look like)"
        if image.text:
            # Its look-alikes' tags it already has are left out, so "none" is no verdict on them.
            return "— (none to add: this picture has words of its own, and no described look-alike carries a tag it lacks)"
        return "— (no described image looks like this one yet)"

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

