import pgvector.django.vector
from django.db import migrations


def index_existing_versions(apps, schema_editor):
    """Each serving version gets its partial HNSW index on the new column, as on the others
    (embeddings/indexes.py); the sweeper then fills the column for images without text."""
    ModelVersion = apps.get_model("embeddings", "ModelVersion")
    for version in ModelVersion.objects.exclude(state="retired"):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_neighbour_vector_id{version.id} ON embeddings_imageembedding "
            f"USING hnsw (neighbour_vector vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
            f"WHERE version_id = {int(version.id)}"
        )


def drop_indexes(apps, schema_editor):
    ModelVersion = apps.get_model("embeddings", "ModelVersion")
    for version in ModelVersion.objects.all():
        schema_editor.execute(f"DROP INDEX IF EXISTS embedding_neighbour_vector_id{version.id}")


class Migration(migrations.Migration):

    dependencies = [
        ('embeddings', '0005_version_lifecycle'),
    ]

    operations = [
        migrations.AddField(
            model_name='imageembedding',
            name='neighbour_vector',
            field=pgvector.django.vector.VectorField(dimensions=384, help_text='only where text_vector is null: the description vectors of the visually nearest described images, mixed with image_vector (embeddings/neighbours.py)', null=True),
        ),
        migrations.RunPython(index_existing_versions, drop_indexes),
    ]
