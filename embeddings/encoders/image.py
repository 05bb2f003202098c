"""CNN image tower: ImageNet class probabilities and pooled features from a timm model.

Preprocessing is PIL and numpy only, shared by every backend; the torch module that all
backends run is towers.ImageTower.
"""
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image as PILImage

from .devices import RunOptions


@dataclass(frozen=True)
class ImageOutputs:
    features: np.ndarray  # (n, pooled_dim) float32, L2-normalised
    probabilities: np.ndarray  # (n, num_classes) float32, softmax at temperature 1

    @classmethod
    def concatenate(cls, parts: list["ImageOutputs"]) -> "ImageOutputs":
        return cls(
            features=np.concatenate([part.features for part in parts]),
            probabilities=np.concatenate([part.probabilities for part in parts]),
        )


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


@dataclass(frozen=True)
class Preprocessing:
    """The model's own input recipe (timm's pretrained config), kept with an exported model."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str

    @classmethod
    def from_timm(cls, config: dict) -> "Preprocessing":
        return cls(
            size=config["input_size"][-1],
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
            interpolation=config.get("interpolation", "bilinear"),
        )

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict) -> "Preprocessing":
        return cls(**{**stored, "mean": tuple(stored["mean"]), "std": tuple(stored["std"])})

    def __call__(self, image: PILImage.Image) -> np.ndarray:
        """RGB PIL image -> normalised (3, size, size) float32: padded on white to a square, then resized."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if (factor := max(image.size) // MAX_PAD_SIDE) > 1:
            image = image.reduce(factor)
        resample = PILImage.Resampling.BICUBIC if self.interpolation == "bicubic" else PILImage.Resampling.BILINEAR
        square = pad_to_square(image).resize((self.size, self.size), resample)
        # Channels first while still bytes, then the same float32 steps in place: the same
        # tensor as before in a third of the time (no temporaries, no float transpose).
        pixels = np.asarray(square).transpose(2, 0, 1).astype(np.float32)
        pixels /= 255.0
        pixels -= np.asarray(self.mean, dtype=np.float32).reshape(3, 1, 1)
        pixels /= np.asarray(self.std, dtype=np.float32).reshape(3, 1, 1)
        return pixels


class ImageEncoder:
    """The tower in torch: for CUDA, for training, and the reference the exported backends
    are checked against."""

    backend = "torch"

    @property
    def precision(self) -> str:
        return "bf16" if self.options.autocast == "bfloat16" else "f32"

    def __init__(self, model, *, device, options: RunOptions | None = None):
        import torch

        from .devices import run_options
        from .towers import ImageTower

        self.device = device
        self.options = (options or run_options(device)).usable_on(device)
        self.preprocess = Preprocessing.from_timm(model.pretrained_cfg)
        self.tower = ImageTower(model).eval().to(device)
        if self.options.channels_last:
            self.tower = self.tower.to(memory_format=torch.channels_last)

    def encode(self, batch: np.ndarray) -> ImageOutputs:
        """A preprocessed (n, 3, size, size) batch -> pooled features and class probabilities."""
        import torch

        from .towers import autocast, to_device

        parts = []
        for start in range(0, len(batch), self.options.batch_size):
            pixels = to_device(np.ascontiguousarray(batch[start : start + self.options.batch_size]), self.device, self.options)
            if self.options.channels_last:
                pixels = pixels.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast(self.device, self.options):
                features, probabilities = self.tower(pixels)
            parts.append(ImageOutputs(features=features.float().cpu().numpy(), probabilities=probabilities.float().cpu().numpy()))
        return ImageOutputs.concatenate(parts)


def timm_model(name: str, *, weights_file: str | None):
    import timm

    if weights_file:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": weights_file})
    return timm.create_model(name, pretrained=True)
