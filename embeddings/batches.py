"""One batch of images through the frozen towers: the files decoded on the calling thread
while an encoder thread embeds the descriptions, then the pictures as they come."""
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue

import numpy as np
from django.conf import settings

from catalog.exceptions import InvalidImage
from catalog.imaging import decode
from catalog.models import Image

from .models import ModelVersion
from .rows import TextVectors
from .spaces import BridgeSpace, ImageVectors

logger = logging.getLogger("glimpse.embeddings")

# Images the encoder waits for before a pass while files still decode (images_encode_as_decoded).
SMALLEST_PASS = 8


def texts_embed(space: BridgeSpace, texts: list[str]) -> "TextVectors":
    """Both towers' vectors of `texts`, keyed by index into `texts` (what `TextVectors.at` re-keys)."""
    english = space.embed_texts(texts)
    multilingual = space.embed_multilingual_texts(texts) if space.multilingual and texts else []
    return TextVectors(english=dict(enumerate(english)), multilingual=dict(enumerate(multilingual)))


def images_encode_as_decoded(space, decoded: SimpleQueue) -> ImageVectors | None:
    """Encode preprocessed images from `decoded` until a None arrives; None if there were none.

    Each pass waits for SMALLEST_PASS images (or the end), then takes every image decoded
    by then: the encoder starts early, later passes find most of the batch ready, and it
    never runs one image at a time (at batch 1 OpenVINO takes several times as long per image).
    """
    parts, ended = [], False
    while not ended:
        pixels = []
        while not ended and len(pixels) < SMALLEST_PASS:
            item = decoded.get()
            ended = item is None
            pixels += [] if ended else [item]
        while not ended:
            try:
                item = decoded.get_nowait()
            except Empty:
                break
            ended = item is None
            pixels += [] if ended else [item]
        if pixels:
            parts.append(space.embed_image_batch(np.stack(pixels)))
    return ImageVectors.concatenate(parts) if parts else None


def mark_failed(active: ModelVersion | None, reasons: dict[int, str]) -> None:
    if active is None:
        return
    for image_id, reason in reasons.items():
        logger.warning("image %s failed to embed: %s", image_id, reason)
        Image.objects.filter(id=image_id).update(embedding_status=Image.EmbeddingStatus.FAILED, embedding_error=reason)


@dataclass
class EncodedBatch:
    """A batch through the towers: the images whose files could be read, their vectors (None
    when there were none), the vectors of their words, and why each of the others failed."""

    readable: list[Image]
    base: ImageVectors | None
    texts: TextVectors
    failed: dict[int, str] = field(default_factory=dict)


def image_preprocess(image: Image, space: BridgeSpace) -> np.ndarray:
    with image.file.open("rb") as handle:
        rgb = decode(handle.read(), max_pixels=settings.GLIMPSE_MAX_PIXELS, max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO).rgb
    return space.preprocess(rgb)


def images_decode_into(decoded: SimpleQueue, images: list[Image], space: BridgeSpace, failed: dict[int, str]) -> list[Image]:
    """Put each image's pixels on `decoded`, then a None; returns the images that could be
    read, and says in `failed` why each of the others could not."""
    readable = []
    try:
        for image in images:
            try:
                decoded.put(image_preprocess(image, space))
                readable.append(image)
            except InvalidImage as error:
                failed[image.id] = f"cannot decode the stored file: {error}"
            except OSError as error:
                failed[image.id] = f"cannot read the stored file {image.file.name}: {error.strerror or error}"
    finally:
        decoded.put(None)  # even on an unexpected error, or the encoder would wait for ever
    return readable


def batch_encode(*, images: list[Image], space: BridgeSpace, active: ModelVersion | None) -> EncodedBatch:
    """Decoding stays on this thread (Pillow's bomb check relies on process-wide warning
    filters); the encoders run on another while the files decode, as ONNX Runtime,
    OpenVINO and torch all release the GIL: first the descriptions, known before any
    file is read, then the images, each pass taking every image decoded by then. An error
    in the encoders fails every image of the batch (in `active`) and is raised."""
    failed: dict[int, str] = {}
    decoded: SimpleQueue = SimpleQueue()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder") as encoder:
        described = [image for image in images if image.text]
        describing = encoder.submit(texts_embed, space, [image.text for image in described])
        encoding = encoder.submit(images_encode_as_decoded, space, decoded)
        readable = images_decode_into(decoded, images, space, failed)
        try:
            position_of = {image.id: position for position, image in enumerate(readable)}
            texts = describing.result().at(position_of, [image.id for image in described])
            base = encoding.result()
        except Exception as error:
            reason = f"the encoder failed on this batch: {type(error).__name__}: {error}"
            mark_failed(active, {image.id: reason for image in images})
            raise
    return EncodedBatch(readable=readable, base=base, texts=texts, failed=failed)
