from django.apps import AppConfig


class EmbeddingsConfig(AppConfig):
    name = "embeddings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from catalog.signals import images_need_embedding

        from .receivers import queue_embedding

        images_need_embedding.connect(queue_embedding, dispatch_uid="embeddings.queue_embedding")
