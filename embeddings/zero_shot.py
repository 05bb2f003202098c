"""The label bridge adapted to the catalog: a zero-shot version with no training.

Version 1 weighs the class-name embeddings by the CNN's ImageNet probabilities. On
drawings and icons those probabilities are skewed the same way for most pictures (a few
classes such as "comic book" or "envelope" take a share of every one), and every class
embedding shares one large component (the prompt, the text tower's common direction), so
the bridge vectors of uncertain pictures all look alike and the same generic pictures
answer every query. This recipe removes both shared parts:

- the catalog's mean logit per class is subtracted before the softmax (the classifier's
  prior on this kind of picture, estimated on a sample of the catalog and stored with
  the version), so a class counts by how much more this picture shows it than the others;
- the class embeddings are centred on their mean, so the shared component no longer
  dominates the weighted mean.

Logits are recomputed from the stored unit-length features at one fixed feature norm
(the median on drawings and emoji), so a version is pure arithmetic on the base rows:
backfilling it needs no forward pass, and new images get the same vectors from the
same features. Measured in docs/retrieval.md, "Version-1 variants".
"""
import io
from dataclasses import dataclass

import numpy as np
from django.conf import settings

# Median L2 norm of tf_efficientnet_lite0's pooled features: 16.1 on openclipart, 16.8 on emoji.
FEATURE_NORM = 16.0
# Catalog images the class prior is estimated on: 200 already give the figures of all.
PRIOR_SAMPLE = 5000


@dataclass(frozen=True)
class ZeroShotRecipe:
    classifier_weight: np.ndarray  # (classes, feature dimensions): the CNN's last layer
    classifier_bias: np.ndarray  # (classes,)
    class_offsets: np.ndarray  # (classes,): the catalog's mean logits
    class_vectors: np.ndarray  # (classes, dimensions): the class-name embeddings, centred
    feature_norm: float = FEATURE_NORM

    @classmethod
    def from_catalog(
        cls, *, features: np.ndarray, classifier_weight: np.ndarray, classifier_bias: np.ndarray, class_embeddings: np.ndarray
    ) -> "ZeroShotRecipe":
        """The recipe for a catalog whose images have these unit-length features (a sample is enough)."""
        if not len(features):
            raise ValueError("the class prior needs at least one embedded image")
        weight = np.asarray(classifier_weight, dtype=np.float32)
        bias = np.asarray(classifier_bias, dtype=np.float32)
        logits = FEATURE_NORM * np.asarray(features, dtype=np.float32) @ weight.T + bias
        embeddings = np.asarray(class_embeddings, dtype=np.float32)
        return cls(
            classifier_weight=weight,
            classifier_bias=bias,
            class_offsets=logits.mean(axis=0),
            class_vectors=embeddings - embeddings.mean(axis=0),
        )

    def image_vectors(self, features: np.ndarray) -> np.ndarray:
        """Unit-length features (n, feature dimensions) -> unit vectors in text space (n, dimensions)."""
        logits = self.feature_norm * np.asarray(features, dtype=np.float32) @ self.classifier_weight.T
        logits += self.classifier_bias - self.class_offsets
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        mixed = probabilities @ self.class_vectors
        return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            classifier_weight=self.classifier_weight,
            classifier_bias=self.classifier_bias,
            class_offsets=self.class_offsets,
            class_vectors=self.class_vectors,
            feature_norm=np.float32(self.feature_norm),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ZeroShotRecipe":
        arrays = np.load(io.BytesIO(bytes(data)))
        return cls(
            classifier_weight=arrays["classifier_weight"],
            classifier_bias=arrays["classifier_bias"],
            class_offsets=arrays["class_offsets"],
            class_vectors=arrays["class_vectors"],
            feature_norm=float(arrays["feature_norm"]),
        )


def tower_classifier() -> tuple[np.ndarray, np.ndarray]:
    """The configured image tower's classifier layer (weight, bias), read from its torch module."""
    from .encoders import image_weights_file, timm_model

    classifier = timm_model(settings.GLIMPSE_IMAGE_MODEL, image_weights_file()).get_classifier()
    return classifier.weight.detach().float().numpy(), classifier.bias.detach().float().numpy()
