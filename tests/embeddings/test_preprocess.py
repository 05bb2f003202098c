"""Model input for ordinary and extreme images, with a real (randomly initialised) timm model."""
import numpy as np
import pytest
import timm
import torch
from PIL import Image as PILImage

from embeddings.encoders.image import Preprocessing, pad_to_square
from tests.images import banner_png, image_bytes
from tests.memory import MB, peak_memory
from tests.timeouts import timeout  # noqa: F401


@pytest.fixture(scope="module")
def encoder() -> Preprocessing:
    return Preprocessing.from_timm(timm.create_model("tf_efficientnet_lite0", pretrained=False).pretrained_cfg)


def noise(size: tuple[int, int]) -> PILImage.Image:
    return PILImage.fromarray(np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def padded_then_resized(encoder: Preprocessing, image: PILImage.Image) -> torch.Tensor:
    """The model input as torch computed it before images were reduced first."""
    square = pad_to_square(image).resize((encoder.size, encoder.size), PILImage.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (pixels - torch.tensor(encoder.mean).view(3, 1, 1)) / torch.tensor(encoder.std).view(3, 1, 1)


@pytest.mark.parametrize("size", [(640, 480), (90, 1500), (4095, 300), (1, 1)])
def test_ordinary_images_give_exactly_the_old_tensor(encoder, size):
    image = noise(size)
    assert torch.equal(torch.from_numpy(encoder(image)), padded_then_resized(encoder, image))


def test_a_large_drawing_gives_nearly_the_old_tensor(encoder):
    drawing = PILImage.new("RGB", (6000, 1500), (255, 255, 255))
    drawing.paste((200, 30, 30), (500, 200, 5500, 1300))
    drawing.paste((20, 20, 160), (2000, 400, 4000, 1100))
    difference = (torch.from_numpy(encoder(drawing)) - padded_then_resized(encoder, drawing)).abs()
    # In grey levels of 0–255: the std is 0.5, so one level is 2/255 of the tensor's scale.
    assert difference.max().item() * 0.5 * 255 < 1.5
    assert difference.mean().item() * 0.5 * 255 < 0.01


def test_a_long_thin_image_is_not_padded_at_full_size(encoder):
    image = PILImage.new("RGB", (16_000, 800), (0, 0, 0))
    with peak_memory() as peak:
        tensor = encoder(image)
    assert tensor.shape == (3, 224, 224)
    # Padding first made a 16,000² square: 1 GB.
    assert peak.growth < 32 * MB, peak.growth


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.usefixtures("timeout")
def test_the_worker_embeds_a_long_image_in_bounded_memory(settings):
    from catalog.models import Image
    from catalog.services import image_create
    from embeddings.services import images_embed

    settings.GLIMPSE_MAX_ASPECT_RATIO = 100
    images_embed(image_ids=[image_create(content=image_bytes(size=(40, 40)), title="first").id])  # loads the encoders
    small = image_create(content=image_bytes(size=(300, 200)), title="small")
    banner = image_create(content=banner_png(), title="banner")
    with peak_memory() as ordinary:
        images_embed(image_ids=[small.id])
    with peak_memory() as long:
        report = images_embed(image_ids=[banner.id])
    assert report.embedded == [banner.id] and not report.failed
    assert Image.objects.get(id=banner.id).embedding_status == Image.EmbeddingStatus.READY
    # Over an ordinary image: 4 bytes a pixel while decoding (182 MB), then a 1,031 × 11 copy;
    # the same 64 MB of slack as the upload paths, since decoding runs on the pipeline's own
    # thread beside the inference runtime's (233 MB measured once against 230 with 48).
    assert long.growth - ordinary.growth < 4 * 65_000 * 700 + 64 * MB, (long.growth, ordinary.growth)
