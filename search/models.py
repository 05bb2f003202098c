from django.contrib.postgres.fields import ArrayField
from django.db import models


class QueryLog(models.Model):
    """One row per search, for analysts: what was asked, what came back, how fast."""

    class Kind(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        SIMILAR = "similar", "more like this"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    text = models.TextField(blank=True)
    image_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of an uploaded query image")
    similar_to = models.ForeignKey("catalog.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    mode = models.CharField(max_length=10)
    filters = models.JSONField(default=dict, blank=True)
    result_ids = ArrayField(models.BigIntegerField(), default=list)
    total = models.PositiveIntegerField(default=0)
    offset = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField()
    version = models.ForeignKey("embeddings.ModelVersion", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
