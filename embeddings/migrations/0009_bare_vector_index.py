"""Text queries rank described images by their description vectors and the others by
COALESCE(neighbour_vector, image_vector) (embeddings/indexes.py): each version that still
has vectors gets that expression index over its rows without text, and loses the
image_vector and neighbour_vector indexes nothing ranks by any more. Written out here
rather than imported, so the migration keeps meaning what it meant."""
from django.db import migrations

HNSW = "USING hnsw ({expression} halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
BARE = "(COALESCE(neighbour_vector, image_vector))"
# The two indexes 0007 left per version that this one replaces, with their predicates, for the way back.
COLUMNS = {"image_vector": "", "neighbour_vector": " AND neighbour_vector IS NOT NULL"}


def versions_with_vectors(apps):
    return apps.get_model("embeddings", "ModelVersion").objects.filter(vectors_dropped=False)


def bare(apps, schema_editor):
    for version in versions_with_vectors(apps):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_bare_vector_id{version.id} ON embeddings_imageembedding "
            f"{HNSW.format(expression=BARE)} WHERE version_id = {int(version.id)} AND text_vector IS NULL"
        )
        for column in COLUMNS:
            schema_editor.execute(f"DROP INDEX IF EXISTS embedding_{column}_id{version.id}")


def lists(apps, schema_editor):
    for version in versions_with_vectors(apps):
        for column, predicate in COLUMNS.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS embedding_{column}_id{version.id} ON embeddings_imageembedding "
                f"{HNSW.format(expression=column)} WHERE version_id = {int(version.id)}{predicate}"
            )
        schema_editor.execute(f"DROP INDEX IF EXISTS embedding_bare_vector_id{version.id}")


class Migration(migrations.Migration):

    dependencies = [
        ("embeddings", "0008_zero_shot_kind"),
    ]

    operations = [migrations.RunPython(bare, lists)]
