"""Borrowed words for pictures that have none.

An image without a title, description or tags has no description vector, so a text
query can reach it only through the bridge, whose ImageNet vocabulary rarely names what
a catalog shows. Its visually nearest described images (by CNN features) usually show
the same kind of thing, so it borrows their description vectors: a softmax over the
feature cosines (a sharp temperature, so the closest few dominate) weights them, and
the mean is mixed with the image's own vector (the bridge, or a trained head's), which
still says what the CNN sees.
"""
import numpy as np

NEIGHBOURS = 10
TEMPERATURE = 0.05
# Share of the borrowed vector in the stored neighbour vector; the rest is the image
# vector's. Version 1's; a trained version picks one of BORROWED_SHARES (search/training.py):
# trained heads make an image's own vector stronger, so it may need less borrowing.
BORROWED_SHARE = 0.5
BORROWED_SHARES = (0.25, 0.5, 0.75)


def neighbour_weights(similarities: np.ndarray, *, temperature: float = TEMPERATURE) -> np.ndarray:
    """Feature cosines of one image's neighbours (k,) -> weights summing to 1."""
    scaled = np.asarray(similarities, dtype=np.float64) / temperature
    exp = np.exp(scaled - scaled.max())
    return exp / exp.sum()


def borrowed_text_vector(*, similarities: np.ndarray, text_vectors: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """The similarity-weighted mean of the neighbours' description vectors (k, d) -> unit (d,)."""
    mixed = neighbour_weights(similarities, temperature=temperature) @ np.asarray(text_vectors, dtype=np.float64)
    return (mixed / np.linalg.norm(mixed)).astype(np.float32)


def neighbour_vector(*, borrowed: np.ndarray, image_vector: np.ndarray, borrowed_share: float = BORROWED_SHARE) -> np.ndarray:
    """What is stored and searched: the borrowed words mixed with the image's own bridge vector."""
    mixed = borrowed_share * np.asarray(borrowed, dtype=np.float64) + (1 - borrowed_share) * np.asarray(image_vector, dtype=np.float64)
    return (mixed / np.linalg.norm(mixed)).astype(np.float32)
