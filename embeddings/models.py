from django.db import models
from django.db.models import Q
from pgvector.django import HalfVectorField, HnswIndex

from .neighbours import BORROWED_SHARE

# Every tower pair in this project embeds into the text tower's 384-d space; a text
# model of another width needs a migration that changes these columns.
DIMENSIONS = 384
# Pooled features of the default image tower (tf_efficientnet_lite0).
FEATURE_DIMENSIONS = 1280


class ModelVersion(models.Model):
    class Kind(models.TextChoices):
        BRIDGE = "bridge", "label bridge (no training)"
        HEADS = "heads", "trained projection heads"
        ZERO_SHOT = "zero-shot", "label bridge adapted to the catalog (no training)"

    class State(models.TextChoices):
        TRAINING = "training"
        BACKFILLING = "backfilling"
        ACTIVE = "active"
        RETIRED = "retired"

    class Precision(models.TextChoices):
        F32 = "f32"
        BF16 = "bf16"

    number = models.PositiveIntegerField(unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.TRAINING)
    image_model = models.CharField(max_length=200)
    text_model = models.CharField(max_length=200, help_text="the English text tower")
    multilingual_text_model = models.CharField(
        max_length=200,
        blank=True,
        help_text="the multilingual text tower, whose lists serve queries in any language beside the English tower's; "
        "empty: English only",
    )
    dimensions = models.PositiveSmallIntegerField(default=DIMENSIONS)
    precision = models.CharField(
        max_length=4,
        choices=Precision.choices,
        default=Precision.F32,
        help_text="what the towers computed this version's vectors in (GLIMPSE_INFERENCE_PRECISION); one per version, never mixed",
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="held-out metrics of this and the active version, training curve, counts")
    notes = models.TextField(blank=True)
    weights = models.BinaryField(null=True, editable=False, help_text="numpy .npz: projection heads for kind=heads, the adapted bridge for kind=zero-shot")
    borrowed_share = models.FloatField(
        default=BORROWED_SHARE,
        help_text="share of borrowed words in a bare image's neighbour vector, the rest its own image vector; "
        "a training run picks it on its held-out judged queries (embeddings/neighbours.py)",
    )
    trained_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    vectors_dropped = models.BooleanField(default=False)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=Q(state="active"), name="one_active_version"),
        ]

    def __str__(self):
        return f"v{self.number} ({self.get_kind_display()}, {self.state})"

    @property
    def multilingual(self) -> bool:
        return bool(self.multilingual_text_model)


class ImageEmbedding(models.Model):
    """One image's vectors in one model version's space; spaces never mix."""

    image = models.ForeignKey("catalog.Image", on_delete=models.CASCADE, related_name="embeddings")
    # No B-tree on version alone: it would tempt the planner away from the HNSW indexes
    # into sorting every row of a version by distance.
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="embeddings", db_index=False)
    # Half precision: half the index and the pages to read, and the same recall@10 as
    # float32 on this project's vectors (docs/search-latency.md; the recall: docs/scaling.md, "Benchmarks").
    image_vector = HalfVectorField(dimensions=DIMENSIONS)
    text_vector = HalfVectorField(dimensions=DIMENSIONS, null=True, help_text="title, description and tags; null when the image has no text")
    feature_vector = HalfVectorField(dimensions=FEATURE_DIMENSIONS, null=True, help_text="the CNN's pooled features")
    neighbour_vector = HalfVectorField(
        dimensions=DIMENSIONS,
        null=True,
        help_text="only where text_vector is null: the description vectors of the visually nearest described images, "
        "mixed with image_vector (embeddings/neighbours.py)",
    )
    # The multilingual tower's space (ModelVersion.multilingual_text_model): the same three
    # kinds of vector through that tower, frozen in every version (heads train the English
    # space only). Version 1's rows keep them whenever any version needs them.
    multilingual_image_vector = HalfVectorField(dimensions=DIMENSIONS, null=True, help_text="the bridge through the multilingual tower")
    multilingual_text_vector = HalfVectorField(dimensions=DIMENSIONS, null=True)
    multilingual_neighbour_vector = HalfVectorField(dimensions=DIMENSIONS, null=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="when the row was last written")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "version"], name="one_embedding_per_version")]
        # HNSW indexes are partial, one set per model version (embeddings/indexes.py), so a
        # search on one version walks only that version's graph and never sees another's.


class PictureTextVector(models.Model):
    """The multilingual tower's vector of the words read in a picture (catalog.Image's
    picture_text, with the names of its signs): its own ranked list finds a picture by what
    its words mean, in any language ("exit" finds 出口). That tower is frozen in every
    version, so one vector per picture serves them all; a row is there only while the
    picture has words to search."""

    image = models.OneToOneField("catalog.Image", on_delete=models.CASCADE, primary_key=True, related_name="picture_text_vector")
    text_model = models.CharField(max_length=200, help_text="the multilingual text tower that wrote the vector")
    vector = HalfVectorField(dimensions=DIMENSIONS)

    class Meta:
        indexes = [
            HnswIndex(name="picture_text_vector_hnsw", fields=["vector"], m=16, ef_construction=64, opclasses=["halfvec_cosine_ops"])
        ]
