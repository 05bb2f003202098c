"""Projection heads on the two frozen towers, zero-initialised so a new model starts as the bridge.

image = normalize(bridge + features · A)      text = normalize(raw + raw · B)

With A = B = 0 both sides are exactly version 1; training moves them only as far as
the data pushes against an L2 penalty, which keeps them near the bridge: a linear head
trained freely on one collection's few thousand pairs ranked well below the bridge on
drawings from another collection.
"""
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional


class ProjectionHeads(nn.Module):
    def __init__(self, *, feature_dimensions: int, dimensions: int, temperature: float = 0.05):
        super().__init__()
        self.image = nn.Linear(feature_dimensions, dimensions, bias=False)
        self.text = nn.Linear(dimensions, dimensions, bias=False)
        nn.init.zeros_(self.image.weight)
        nn.init.zeros_(self.text.weight)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    @classmethod
    def starting_from(cls, weights: "HeadWeights") -> "ProjectionHeads":
        heads = cls(feature_dimensions=weights.image.shape[0], dimensions=weights.image.shape[1])
        with torch.no_grad():
            heads.image.weight.copy_(torch.from_numpy(weights.image.T.copy()))
            heads.text.weight.copy_(torch.from_numpy(weights.text.T.copy()))
            heads.logit_scale.fill_(weights.logit_scale)
        return heads

    def embed_images(self, bridge: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return functional.normalize(bridge + self.image(features), dim=-1)

    def embed_texts(self, raw: torch.Tensor) -> torch.Tensor:
        return functional.normalize(raw + self.text(raw), dim=-1)

    def export(self) -> "HeadWeights":
        return HeadWeights(
            image=self.image.weight.detach().cpu().numpy().T.copy(),
            text=self.text.weight.detach().cpu().numpy().T.copy(),
            logit_scale=float(self.logit_scale.detach().cpu()),
        )


@dataclass(frozen=True)
class HeadWeights:
    """The trained matrices, applied with numpy at serving time (no torch module needed)."""

    image: np.ndarray  # (feature_dimensions, dimensions)
    text: np.ndarray  # (dimensions, dimensions)
    logit_scale: float

    def embed_images(self, bridge: np.ndarray, features: np.ndarray) -> np.ndarray:
        return unit_rows(bridge + features @ self.image)

    def embed_texts(self, raw: np.ndarray) -> np.ndarray:
        return unit_rows(raw + raw @ self.text)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, image=self.image, text=self.text, logit_scale=np.float32(self.logit_scale))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "HeadWeights":
        arrays = np.load(io.BytesIO(bytes(data)))
        return cls(image=arrays["image"], text=arrays["text"], logit_scale=float(arrays["logit_scale"]))


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=-1, keepdims=True).clip(min=1e-12)).astype(np.float32)
