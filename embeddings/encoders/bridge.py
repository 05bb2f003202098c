"""Version 1: the label bridge from image space into text space, with no training.

The CNN's ImageNet classifier says what it sees; each of the 1000 class names is
embedded by the text tower, and an image's vector is the probability-weighted mean of
those class embeddings. Softmax at temperature 1 over all classes with the first name
of each class in "a photo of a {name}." did as well as any variant measured (top-k
truncation, a lower temperature, all of a class's synonyms).
"""
import numpy as np

PROMPT = "a photo of a {name}."


def imagenet_class_names() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(index).split(",")[0].strip() for index in range(1000)]


def class_name_embeddings(text_encoder) -> np.ndarray:
    """(1000, dimensions) unit vectors of the prompted ImageNet class names."""
    return text_encoder.encode([PROMPT.format(name=name) for name in imagenet_class_names()])


def bridge_vectors(probabilities: np.ndarray, class_embeddings: np.ndarray) -> np.ndarray:
    """Class probabilities (n, 1000) -> unit vectors in text space (n, dimensions)."""
    mixed = probabilities @ class_embeddings
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)
