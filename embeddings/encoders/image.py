"""CNN image tower: a timm model giving ImageNet logits and pooled features."""
from dataclasses import dataclass

import numpy as np
import timm
import torch
from PIL import Image as PILImage


@dataclass(frozen=True)
class ImageOutputs:
    features: np.ndarray  # (n, pooled_dim) float32, L2-normalised
    probabilities: np.ndarray  # (n, num_classes) float32, softmax at temperature 1


# Padding multiplies a long, thin image's pixels by its aspect ratio (65,000 × 700 would pad
# to 65,000², 17 GB). A larger image is first reduced by a whole factor, box-averaged, which
# leaves its model input within one grey level; smaller ones keep exactly the old tensor.
MAX_PAD_SIDE = 2048


def pad_to_square(image: PILImage.Image, *, fill=(255, 255, 255)) -> PILImage.Image:
    """Pad on white rather than crop: drawings and cut-outs lose tall, thin parts to a centre crop."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    canvas = PILImage.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


class ImageEncoder:
    def __init__(self, model: torch.nn.Module, *, device: torch.device):
        self.model = model.eval().to(device)
        self.device = device
        config = model.pretrained_cfg
        self.size = config["input_size"][-1]
        self.mean = torch.tensor(config["mean"]).view(3, 1, 1)
        self.std = torch.tensor(config["std"]).view(3, 1, 1)
        self.interpolation = PILImage.Resampling.BICUBIC if config.get("interpolation") == "bicubic" else PILImage.Resampling.BILINEAR

    @classmethod
    def from_timm(cls, name: str, *, weights_file: str | None, device: torch.device) -> "ImageEncoder":
        if weights_file:
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": weights_file})
        else:
            model = timm.create_model(name, pretrained=True)
        return cls(model, device=device)

    def preprocess(self, image: PILImage.Image) -> torch.Tensor:
        """RGB PIL image -> normalised (3, size, size) tensor: padded on white to a square, then resized."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if (factor := max(image.size) // MAX_PAD_SIDE) > 1:
            image = image.reduce(factor)
        square = pad_to_square(image).resize((self.size, self.size), self.interpolation)
        pixels = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (pixels - self.mean) / self.std

    @torch.inference_mode()
    def encode(self, batch: torch.Tensor) -> ImageOutputs:
        """A preprocessed batch -> pooled features and class probabilities in one forward pass."""
        pooled = self.model.forward_head(self.model.forward_features(batch.to(self.device)), pre_logits=True)
        logits = self.model.get_classifier()(pooled)
        features = torch.nn.functional.normalize(pooled.float(), dim=-1)
        return ImageOutputs(
            features=features.cpu().numpy(),
            probabilities=logits.float().softmax(dim=-1).cpu().numpy(),
        )
