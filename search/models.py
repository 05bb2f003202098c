from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from pgvector.django import VectorField

from embeddings.models import DIMENSIONS, FEATURE_DIMENSIONS


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
    nearest_only = models.BooleanField(default=False, help_text="nothing passed the relevance cut-off; the nearest were shown")
    offset = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField()
    version = models.ForeignKey("embeddings.ModelVersion", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]


class RelevanceJudgment(models.Model):
    """A curator's grade of one result for one query. Changing a grade adds a row and
    retires the old one, so history is kept and exactly one grade per (query, image,
    curator) is current."""

    class Grade(models.IntegerChoices):
        IRRELEVANT = 0, "0 · irrelevant"
        PARTIAL = 1, "1 · partly relevant"
        RELEVANT = 2, "2 · relevant"
        PERFECT = 3, "3 · perfect"

    query_key = models.CharField(max_length=300, db_index=True, help_text="normalised query text, or image:<sha256>")
    query_text = models.TextField(blank=True)
    query_image_hash = models.CharField(max_length=64, blank=True)
    query_vector = VectorField(dimensions=FEATURE_DIMENSIONS, null=True, blank=True, help_text="CNN features of a query picture")
    image = models.ForeignKey("catalog.Image", on_delete=models.CASCADE, related_name="+")
    grade = models.PositiveSmallIntegerField(choices=Grade.choices)
    curator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey("embeddings.ModelVersion", on_delete=models.PROTECT, related_name="+", help_text="the model that showed the result")
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["query_key", "image", "curator"], condition=Q(is_current=True), name="one_current_grade"
            ),
            models.CheckConstraint(condition=Q(grade__lte=3), name="grade_at_most_3"),
        ]

    def __str__(self):
        return f"{self.query_text or self.query_key} → image {self.image_id}: {self.grade}"


class JudgedQuery(models.Model):
    """A judged text query and its text-tower vectors (version-independent: the towers are
    frozen), so that a new query close to it, in any language through the multilingual
    tower, can borrow its curators' grades at once."""

    query_key = models.CharField(max_length=300, unique=True)
    text = models.TextField()
    vector = VectorField(dimensions=DIMENSIONS, null=True, blank=True, help_text="the English tower's; null until a job embeds it")
    multilingual_vector = VectorField(dimensions=DIMENSIONS, null=True, blank=True, help_text="the multilingual tower's; null until a job embeds it")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.text
