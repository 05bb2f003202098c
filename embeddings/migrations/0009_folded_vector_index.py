"""Text queries rank images by COALESCE(neighbour_vector, image_vector) in one list
(embeddings/indexes.py): each version that still has vectors gets that expression index,
and loses the image_vector and neighbour_vector indexes nothing ranks by any more. Written
out here rather than imported, so the migration keeps meaning what it meant."""
from django.db import migrations

HNSW = "USING hnsw ({expression} halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
FOLDED = "(COALESCE(neighbour_vector, image_vector))"


def versions_with_vectors(apps):
    return apps.get_model("embeddings", "ModelVersion").objects.filter(vectors_dropped=False)


def fold(apps, schema_editor):
    for version in versions_with_vectors(apps):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_folded_vector_id{version.id} ON embeddings_imageembedding "
            f"{HNSW.format(expression=FOLDED)} WHERE version_id = {int(version.id)}"
        )
        schema_editor.execute(f"DROP INDEX IF EXISTS embedding_image_vector_id{version.id}")
        schema_editor.execute(f"DROP INDEX IF EXISTS embedding_neighbour_vector_id{version.id}")


def unfold(apps, schema_editor):
    for version in versions_with_vectors(apps):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_image_vector_id{version.id} ON embeddings_imageembedding "
            f"{HNSW.format(expression='image_vector')} WHERE version_id = {int(version.id)}"
        )
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_neighbour_vector_id{version.id} ON embeddings_imageembedding "
            f"{HNSW.format(expression='neighbour_vector')} WHERE version_id = {int(version.id)} AND neighbour_vector IS NOT NULL"
        )
        schema_editor.execute(f"DROP INDEX IF EXISTS embedding_folded_vector_id{version.id}")


class Migration(migrations.Migration):

    dependencies = [
        ("embeddings", "0008_zero_shot_kind"),
    ]

    operations = [migrations.RunPython(fold, unfold)]
