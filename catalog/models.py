from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models

TAG_MAX_CHARS = 100  # a tag's length; longer ones are cut (catalog.services.clean_tags)


class Image(models.Model):
    class EmbeddingStatus(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    class PictureTextState(models.TextChoices):
        PENDING = "pending", "not read yet"
        READ = "read", "read by the reader"
        CORRECTED = "corrected", "corrected by a curator"
        DISMISSED = "dismissed", "dismissed by a curator"
        FAILED = "failed", "the reader failed"

    file = models.ImageField(upload_to="images/", max_length=255)
    thumbnail = models.ImageField(upload_to="thumbnails/", max_length=255)
    title = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=TAG_MAX_CHARS), default=list, blank=True)
    category = models.CharField(max_length=200, blank=True, db_index=True)
    source = models.CharField(max_length=500, blank=True)
    license = models.CharField(max_length=100, blank=True)
    content_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the file's bytes")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    embedding_status = models.CharField(
        max_length=10, choices=EmbeddingStatus.choices, default=EmbeddingStatus.PENDING, db_index=True
    )
    embedding_error = models.TextField(blank=True)
    # The words in the picture (embeddings/reading.py), apart from the curator's own words:
    # what the reader found, or a curator's correction, which a new reading never replaces.
    # Searched in the full-text document (below the title), by part of a word and by meaning.
    picture_text = models.TextField(
        "words in the picture", blank=True, help_text="what the reader found in the picture; correct it here, or dismiss it"
    )
    picture_text_state = models.CharField(
        max_length=10, choices=PictureTextState.choices, default=PictureTextState.PENDING, db_index=True
    )
    picture_text_lines = models.JSONField(
        default=list, blank=True, help_text="the reader's lines: text, confidence (0–1) and box corners in the picture's pixels"
    )
    picture_text_reader = models.CharField(max_length=200, blank=True, help_text="the reader and models that read it")
    picture_text_error = models.TextField(blank=True)
    # Names of the signs and single characters in picture_text ("$" -> "dollar sign
    # dollar"), written with it: what makes "dollar sign" or "the letter q" find them.
    picture_glyphs = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [GinIndex(fields=["tags"], name="catalog_image_tags_gin")]

    def __str__(self):
        return self.title or f"image {self.pk}"

    @property
    def text(self) -> str:
        """Title, description and tags as one passage: what the description vector encodes."""
        parts = [self.title.strip(), self.description.strip(), ", ".join(tag for tag in self.tags if tag)]
        return ". ".join(part for part in parts if part)
