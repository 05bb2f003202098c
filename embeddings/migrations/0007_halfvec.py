"""Vectors in half precision (halfvec) and their HNSW indexes with halfvec_cosine_ops.

Each version's partial indexes are dropped, the columns converted in place
(`USING column::halfvec(n)`), and the indexes built again with the predicate of
embeddings/indexes.py (`version_id = N`, and `AND column IS NOT NULL` on the nullable
columns). Backwards, the columns go back to float32 `vector` and the indexes to their
0006 form.

PostgreSQL will not change the type of a column that a view reads: the analytics views
of search 0004 that read these columns are dropped first and created again after, from
0004's own definitions (they cast to `vector`, so they serve either type). That is why
this migration runs after search 0004, on a fresh database as on an existing one. The
two analytics functions that walk an HNSW graph say each index's new predicate, so
that the planner can still take the index.
"""
import importlib

import pgvector.django.halfvec
from django.db import migrations

ANALYTICS = importlib.import_module("search.migrations.0004_analytics_views")
# The views that read the vector columns, each after the views it reads.
VIEWS = [ANALYTICS.CATEGORY_CENTROIDS, ANALYTICS.CATEGORY_OUTLIERS, ANALYTICS.CATEGORY_OVERLAP, ANALYTICS.VECTOR_DRIFT]
DROP_VIEWS = "DROP VIEW analytics_vector_drift, analytics_category_overlap, analytics_category_outliers, analytics_category_centroids"


def with_predicate(function: str, old: str, new: str) -> str:
    assert old in function, old
    return function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(old, new)


GRAPH_WALKS = [
    (
        with_predicate(ANALYTICS.NEAR_DUPLICATE_PAIRS, "other.version_id = %1$s AND", "other.version_id = %1$s AND other.feature_vector IS NOT NULL AND"),
        ANALYTICS.NEAR_DUPLICATE_PAIRS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
    ),
    (
        with_predicate(
            ANALYTICS.UNDESCRIBED_NEIGHBOUR_LIST,
            "described.version_id = %1$s AND described.text_vector",
            "described.version_id = %1$s AND described.feature_vector IS NOT NULL AND described.text_vector",
        ),
        ANALYTICS.UNDESCRIBED_NEIGHBOUR_LIST.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
    ),
]

COLUMNS = ("image_vector", "text_vector", "feature_vector", "neighbour_vector")
WIDTHS = {"image_vector": 384, "text_vector": 384, "feature_vector": 1280, "neighbour_vector": 384}


def alter_columns(kind: str) -> str:
    """One ALTER TABLE for the four columns, so the table is rewritten once, not four times."""
    return "ALTER TABLE embeddings_imageembedding " + ", ".join(
        f"ALTER COLUMN {column} TYPE {kind}({width}) USING {column}::{kind}({width})" for column, width in WIDTHS.items()
    )


def versions_with_vectors(apps):
    return apps.get_model("embeddings", "ModelVersion").objects.filter(vectors_dropped=False)


def drop_indexes(apps, schema_editor):
    for version in apps.get_model("embeddings", "ModelVersion").objects.all():
        for column in COLUMNS:
            schema_editor.execute(f"DROP INDEX IF EXISTS embedding_{column}_id{version.id}")


def create_halfvec_indexes(apps, schema_editor):
    for version in versions_with_vectors(apps):
        for column in COLUMNS:
            not_null = "" if column == "image_vector" else f" AND {column} IS NOT NULL"  # image_vector is NOT NULL
            schema_editor.execute(
                f"CREATE INDEX embedding_{column}_id{version.id} ON embeddings_imageembedding "
                f"USING hnsw ({column} halfvec_cosine_ops) WITH (m = 16, ef_construction = 64) "
                f"WHERE version_id = {int(version.id)}{not_null}"
            )


def create_vector_indexes(apps, schema_editor):
    for version in versions_with_vectors(apps):
        for column in COLUMNS:
            schema_editor.execute(
                f"CREATE INDEX embedding_{column}_id{version.id} ON embeddings_imageembedding "
                f"USING hnsw ({column} vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
                f"WHERE version_id = {int(version.id)}"
            )


class Migration(migrations.Migration):

    dependencies = [
        ("embeddings", "0006_neighbour_vector"),
        ("search", "0004_analytics_views"),
    ]

    operations = [
        migrations.RunPython(drop_indexes, create_vector_indexes),
        migrations.RunSQL(DROP_VIEWS, VIEWS),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(alter_columns("halfvec"), alter_columns("vector"))],
            state_operations=[
                migrations.AlterField(
                    model_name="imageembedding",
                    name="image_vector",
                    field=pgvector.django.halfvec.HalfVectorField(dimensions=384),
                ),
                migrations.AlterField(
                    model_name="imageembedding",
                    name="text_vector",
                    field=pgvector.django.halfvec.HalfVectorField(dimensions=384, help_text="title, description and tags; null when the image has no text", null=True),
                ),
                migrations.AlterField(
                    model_name="imageembedding",
                    name="feature_vector",
                    field=pgvector.django.halfvec.HalfVectorField(dimensions=1280, help_text="the CNN's pooled features", null=True),
                ),
                migrations.AlterField(
                    model_name="imageembedding",
                    name="neighbour_vector",
                    field=pgvector.django.halfvec.HalfVectorField(
                        dimensions=384,
                        help_text="only where text_vector is null: the description vectors of the visually nearest described images, mixed with image_vector (embeddings/neighbours.py)",
                        null=True,
                    ),
                ),
            ],
        ),
        migrations.RunSQL(VIEWS, DROP_VIEWS),
        migrations.RunPython(create_halfvec_indexes, drop_indexes),
        *[migrations.RunSQL(forwards, backwards) for forwards, backwards in GRAPH_WALKS],
    ]
