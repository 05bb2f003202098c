"""The multilingual text tower's columns. A new catalog (version 1 without vectors) gets
the tower at once, with its two indexes, so a new install serves every language; an
existing catalog keeps English only until `manage.py multilingual_version` releases a
version with it. The DDL is written out, not imported, so the migration keeps meaning
what it meant."""
import pgvector.django.halfvec
from django.conf import settings
from django.db import migrations, models

HNSW = "USING hnsw ({expression} halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
INDEXES = {
    "multilingual_text_vector": ("(multilingual_text_vector)", "multilingual_text_vector IS NOT NULL"),
    "multilingual_bare_vector": (
        "(COALESCE(multilingual_neighbour_vector, multilingual_image_vector))",
        "text_vector IS NULL AND multilingual_image_vector IS NOT NULL",
    ),
}


def new_catalog_speaks_every_language(apps, schema_editor):
    ModelVersion = apps.get_model("embeddings", "ModelVersion")
    ImageEmbedding = apps.get_model("embeddings", "ImageEmbedding")
    first = ModelVersion.objects.filter(number=1).first()
    if first is None or not settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL or ImageEmbedding.objects.filter(version=first).exists():
        return
    ModelVersion.objects.filter(id=first.id).update(multilingual_text_model=settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL)
    for name, (expression, predicate) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS embedding_{name}_id{first.id} ON embeddings_imageembedding "
            f"{HNSW.format(expression=expression)} WHERE version_id = {int(first.id)} AND {predicate}"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('embeddings', '0011_version_precision'),
    ]

    operations = [
        migrations.AddField(
            model_name='imageembedding',
            name='multilingual_image_vector',
            field=pgvector.django.halfvec.HalfVectorField(dimensions=384, help_text='the bridge through the multilingual tower', null=True),
        ),
        migrations.AddField(
            model_name='imageembedding',
            name='multilingual_neighbour_vector',
            field=pgvector.django.halfvec.HalfVectorField(dimensions=384, null=True),
        ),
        migrations.AddField(
            model_name='imageembedding',
            name='multilingual_text_vector',
            field=pgvector.django.halfvec.HalfVectorField(dimensions=384, null=True),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='multilingual_text_model',
            field=models.CharField(blank=True, help_text="the multilingual text tower, whose lists serve queries in any language beside the English tower's; empty: English only", max_length=200),
        ),
        migrations.AlterField(
            model_name='modelversion',
            name='text_model',
            field=models.CharField(help_text='the English text tower', max_length=200),
        ),
        migrations.RunPython(new_catalog_speaks_every_language, migrations.RunPython.noop),
    ]
