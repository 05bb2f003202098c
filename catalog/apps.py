from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CatalogConfig(AppConfig):
    name = "catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .text_search import text_search_language_follow

        post_migrate.connect(text_search_language_follow, sender=self)
