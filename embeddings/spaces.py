"""A model version's embedding space: how images and texts become comparable vectors.

Version 1 is the label bridge: images go through the CNN's class probabilities into the
text tower's space (the probability-weighted mean of the class names' vectors); texts go
through the text tower. Trained versions apply projection heads on top of exactly those
frozen vectors, and zero-shot versions adapt the bridge to the catalog from the stored
features (zero_shot.py), so the bridge version's rows double as the cache of frozen-tower
outputs that training and backfilling read.

A version with a multilingual tower also has that tower's space: the same bridge through
its class-name vectors, and its vectors of the same words. It stays frozen in every
version: heads train the English space.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from . import encoders
from .models import ModelVersion


@dataclass(frozen=True)
class ImageVectors:
    text_space: np.ndarray  # (n, 384): comparable with text queries
    features: np.ndarray  # (n, 1280): the CNN's pooled features, for picture-to-picture search
    # (n, 384): the bridge through the multilingual tower, where asked for (a list with None
    # for pictures that have none, when read back from stored rows)
    multilingual: np.ndarray | list | None = None

    @classmethod
    def concatenate(cls, parts: list["ImageVectors"]) -> "ImageVectors":
        multilingual = [part.multilingual for part in parts]
        return cls(
            text_space=np.concatenate([part.text_space for part in parts]),
            features=np.concatenate([part.features for part in parts]),
            multilingual=None if any(part is None for part in multilingual) else np.concatenate(multilingual),
        )


class BridgeSpace:
    """`multilingual`: images also get the bridge through the multilingual tower."""

    def __init__(self, *, multilingual: bool = False):
        self.multilingual = multilingual

    def preprocess(self, image: PILImage.Image) -> np.ndarray:
        return encoders.image_encoder().preprocess(image)

    def embed_image_batch(self, batch: np.ndarray) -> ImageVectors:
        outputs = encoders.image_encoder().encode(batch)
        return ImageVectors(
            text_space=encoders.bridge_vectors(outputs.probabilities, encoders.class_embeddings()),
            features=outputs.features,
            multilingual=encoders.bridge_vectors(outputs.probabilities, encoders.class_embeddings(multilingual=True))
            if self.multilingual
            else None,
        )

    def embed_images(self, images: list[PILImage.Image]) -> ImageVectors:
        return self.embed_image_batch(np.stack([self.preprocess(image) for image in images]))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return encoders.text_encoder().encode(texts)

    def embed_multilingual_texts(self, texts: list[str]) -> np.ndarray:
        return encoders.multilingual_encoder().encode(texts)

    def from_base(self, base: ImageVectors) -> ImageVectors:
        return base

    def texts_from_base(self, raw: np.ndarray) -> np.ndarray:
        return raw


class HeadsSpace(BridgeSpace):
    def __init__(self, heads):
        super().__init__()
        self.heads = heads  # training.heads.HeadWeights

    def embed_image_batch(self, batch: np.ndarray) -> ImageVectors:
        return self.from_base(super().embed_image_batch(batch))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.texts_from_base(super().embed_texts(texts))

    def from_base(self, base: ImageVectors) -> ImageVectors:
        return ImageVectors(text_space=self.heads.embed_images(base.text_space, base.features), features=base.features, multilingual=base.multilingual)

    def texts_from_base(self, raw: np.ndarray) -> np.ndarray:
        return self.heads.embed_texts(raw)


class ZeroShotSpace(BridgeSpace):
    """Images through the catalog-adapted bridge; texts stay the text tower's own."""

    def __init__(self, recipe):
        super().__init__()
        self.recipe = recipe  # zero_shot.ZeroShotRecipe

    def embed_image_batch(self, batch: np.ndarray) -> ImageVectors:
        return self.from_base(super().embed_image_batch(batch))

    def from_base(self, base: ImageVectors) -> ImageVectors:
        return ImageVectors(text_space=self.recipe.image_vectors(base.features), features=base.features, multilingual=base.multilingual)


def space_for(version: ModelVersion) -> BridgeSpace:
    if version.kind == ModelVersion.Kind.BRIDGE:
        return BridgeSpace()
    if version.kind == ModelVersion.Kind.ZERO_SHOT:
        from .zero_shot import ZeroShotRecipe

        return ZeroShotSpace(ZeroShotRecipe.from_bytes(version.weights))
    # Here, not at the top: the heads module imports torch for training, which a web
    # process serving keyword searches never needs.
    from .training.heads import HeadWeights

    return HeadsSpace(HeadWeights.from_bytes(version.weights))
