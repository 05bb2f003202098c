from django.dispatch import Signal

# Sent after the transaction that created or changed images commits, with `image_ids`.
# The embeddings app connects to it; the catalog itself knows nothing about vectors.
images_need_embedding = Signal()
