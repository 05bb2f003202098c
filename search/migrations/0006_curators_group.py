"""A ready "Curators" group: judge results, tag and edit pictures, see their own judgments
(the judgments admin shows a judge their own), view model versions (not release them)."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Curators"
PERMISSIONS = [
    ("search", "add_relevancejudgment"),
    ("catalog", "view_image"),
    ("catalog", "change_image"),
    ("embeddings", "view_modelversion"),
]


def curators_group_create(apps, schema_editor):
    # Permissions are made after the last migration; on a new database they do not exist yet.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def curators_group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0005_multilingual_tower"),
        ("catalog", "0004_search_document_cjk"),
        ("embeddings", "0012_multilingual_tower"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(curators_group_create, curators_group_delete)]
