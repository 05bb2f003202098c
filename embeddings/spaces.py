"""A model version's embedding space: how images and texts become comparable vectors.

Version 1 is the label bridge (DESIGN.md): images go through the CNN's class
probabilities into the text tower's space; texts go through the text tower.
"""
import numpy as np
import torch
from PIL import Image as PILImage

from . import encoders
from .models import ModelVersion


class BridgeSpace:
    def preprocess(self, image: PILImage.Image) -> torch.Tensor:
        return encoders.image_encoder().preprocess(image)

    def embed_image_batch(self, batch: torch.Tensor) -> np.ndarray:
        outputs = encoders.image_encoder().encode(batch)
        return encoders.bridge_vectors(outputs.probabilities, encoders.class_embeddings())

    def embed_images(self, images: list[PILImage.Image]) -> np.ndarray:
        return self.embed_image_batch(torch.stack([self.preprocess(image) for image in images]))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return encoders.text_encoder().encode(texts)


def space_for(version: ModelVersion) -> BridgeSpace:
    if version.kind == ModelVersion.Kind.BRIDGE:
        return BridgeSpace()
    raise NotImplementedError(f"{version} has kind {version.kind!r}, which this code cannot load")
