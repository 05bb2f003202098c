from django.db import migrations, models


class Migration(migrations.Migration):
    """The column has always been stamped at every write (auto_now), not at creation."""

    dependencies = [
        ("embeddings", "0013_picture_text_vector"),
    ]

    operations = [
        migrations.RenameField(model_name="imageembedding", old_name="created_at", new_name="updated_at"),
        migrations.AlterField(
            model_name="imageembedding",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, help_text="when the row was last written"),
        ),
    ]
