from django.db import migrations
from django.utils import timezone


def create_bridge_version(apps, schema_editor):
    ModelVersion = apps.get_model("embeddings", "ModelVersion")
    ModelVersion.objects.get_or_create(
        number=1,
        defaults={
            "kind": "bridge",
            "state": "active",
            "image_model": "tf_efficientnet_lite0",
            "text_model": "sentence-transformers/all-MiniLM-L6-v2",
            "dimensions": 384,
            "notes": "ImageNet class probabilities mapped into text space through the class names; no training.",
            "activated_at": timezone.now(),
        },
    )


class Migration(migrations.Migration):
    dependencies = [("embeddings", "0001_initial")]
    operations = [migrations.RunPython(create_bridge_version, migrations.RunPython.noop)]
