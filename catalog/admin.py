from django.contrib import admin, messages
from django.utils.html import format_html

from .models import Image
from .services import images_request_embedding


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "title", "category", "embedding_status", "created_at"]
    list_display_links = ["preview", "title"]
    list_filter = ["embedding_status", "category", "license"]
    search_fields = ["title", "description"]
    readonly_fields = [
        "large_preview",
        "content_hash",
        "width",
        "height",
        "embedding_status",
        "embedding_error",
        "created_at",
        "updated_at",
    ]
    fields = [
        "large_preview",
        "title",
        "description",
        "tags",
        "category",
        "source",
        "license",
        "embedding_status",
        "embedding_error",
        "content_hash",
        "width",
        "height",
        "created_at",
        "updated_at",
    ]
    actions = ["re_embed"]
    list_per_page = 50

    def has_add_permission(self, request):
        # New images go through ingest validation: the import command or the search API.
        return False

    @admin.display(description="image")
    def preview(self, image: Image):
        return format_html('<img src="{}" alt="" style="max-height:64px;max-width:96px">', image.thumbnail.url)

    @admin.display(description="image")
    def large_preview(self, image: Image):
        return format_html(
            '<a href="{}"><img src="{}" alt="" style="max-height:360px;max-width:100%"></a>',
            image.file.url,
            image.file.url,
        )

    @admin.action(description="Re-embed the selected images")
    def re_embed(self, request, queryset):
        count = images_request_embedding(image_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} images queued for embedding.", messages.SUCCESS)
