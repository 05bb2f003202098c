"""The real pretrained towers, loaded from the PyPI packages with no network."""
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image as PILImage

from embeddings import encoders
from embeddings.encoders.bridge import imagenet_class_names
from embeddings.encoders.image import pad_to_square
from embeddings.encoders.weights import convert_efficientnet_lite0
from tests.images import DEMO

pytestmark = pytest.mark.slow


def demo_image(title: str) -> PILImage.Image:
    for line in Path(DEMO, "data.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["title"] == title:
            return PILImage.open(Path(DEMO, row["file"])).convert("RGB")
    raise LookupError(title)


def test_converted_weights_load_strictly_into_timm(tmp_path):
    path = convert_efficientnet_lite0(tmp_path / "lite0.pth")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(torch.load(path), strict=True)
    assert convert_efficientnet_lite0(path) == path  # the second call reuses the file


def test_the_image_tower_recognises_a_guitar():
    encoder = encoders.image_encoder()
    outputs = encoder.encode(encoder.preprocess(demo_image("electric guitar"))[None])
    names = imagenet_class_names()
    top = [names[index] for index in np.argsort(-outputs.probabilities[0])[:3]]
    assert "electric guitar" in top
    assert outputs.features.shape == (1, 1280)
    assert np.allclose(np.linalg.norm(outputs.features, axis=1), 1, atol=1e-5)
    assert encoder.preprocess.mean == (0.5, 0.5, 0.5) and encoder.preprocess.size == 224


def test_text_vectors_are_unit_length_and_meaningful():
    vectors = encoders.text_encoder().encode(["a red apple", "a green apple", "an electric guitar"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert encoders.text_encoder().encode([]).shape == (0, 384)


def test_the_bridge_puts_images_into_text_space():
    encoder = encoders.image_encoder()
    batch = np.stack([encoder.preprocess(demo_image(title)) for title in ("electric guitar", "Old car")])
    vectors = encoders.bridge_vectors(encoder.encode(batch).probabilities, encoders.class_embeddings())
    texts = encoders.text_encoder().encode(["a guitar", "a car"])
    assert vectors.shape == (2, 384)
    similarity = vectors @ texts.T
    assert similarity[0, 0] > similarity[0, 1] and similarity[1, 1] > similarity[1, 0]


def test_padding_keeps_the_whole_drawing_on_white():
    tall = PILImage.new("RGB", (10, 30), (0, 0, 0))
    square = pad_to_square(tall)
    assert square.size == (30, 30)
    assert square.getpixel((0, 0)) == (255, 255, 255) and square.getpixel((15, 15)) == (0, 0, 0)
