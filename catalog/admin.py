from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from .decode_slots import decode_slots
from .exceptions import InvalidImage
from .imaging import check_image
from .models import Image
from .services import image_create, images_request_embedding


class ImageUploadForm(forms.ModelForm):
    """Adding an image in the admin goes through the same validation as the import."""

    upload = forms.FileField(help_text="JPEG, PNG, GIF, WEBP, BMP or TIFF")

    class Meta:
        model = Image
        fields = ["upload", "title", "description", "tags", "category", "source", "license"]

    def clean_upload(self):
        try:
            with decode_slots.slot():
                checked = check_image(
                    self.cleaned_data["upload"].read(settings.GLIMPSE_MAX_UPLOAD_BYTES + 1),
                    max_bytes=settings.GLIMPSE_MAX_UPLOAD_BYTES,
                    max_pixels=settings.GLIMPSE_MAX_PIXELS,
                    max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO,
                )
        except InvalidImage as error:
            raise forms.ValidationError(str(error)) from None
        existing = Image.objects.filter(content_hash=checked.content_hash).values_list("id", flat=True).first()
        if existing is not None:
            raise forms.ValidationError(f"the same file is already in the catalog as image {existing}")
        return checked.content


class ImageAdmin(admin.ModelAdmin):
    """The catalog's image page. Registered by search/admin.py, which composes the pages that
    several apps add to, each app extending the one upstream of it."""

    list_display = ["preview", "title", "category", "embedding_status", "created_at"]
    list_display_links = ["preview", "title"]
    list_filter = ["embedding_status", "category", "license"]
    # A term matches inside any tag (PostgreSQL compares the array's text, "{tree frog,green}");
    # the image page of embeddings/admin.py adds the words read in the picture.
    search_fields = ["title", "description", "tags"]
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

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ImageUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ImageUploadForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = image_create(
            content=data["upload"],
            title=data["title"],
            description=data["description"],
            tags=data["tags"] or (),
            category=data["category"],
            source=data["source"],
            license=data["license"],
        )
        obj.pk = created.pk  # the admin redirects and logs by the object it was given

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
