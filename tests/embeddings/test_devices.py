"""The CUDA code paths (batch size, pinned memory, channels-last), run on the CPU: what a
CPU keeps of them, and that a tower asked for them still gives its vectors; and mixed
precision only where GLIMPSE_INFERENCE_PRECISION asks for it."""
import numpy as np
import pytest
import timm
import torch
from transformers import BertConfig, BertModel

from embeddings import encoders
from embeddings.encoders import RunOptions, run_options
from embeddings.encoders.image import ImageEncoder
from embeddings.encoders.text import TextEncoder, Tokens

CPU = torch.device("cpu")
CUDA_OPTIONS = RunOptions(batch_size=3, pin_memory=True)


def test_a_cpu_runs_float32_batches_of_32_in_channels_last():
    assert run_options(CPU) == RunOptions(batch_size=32, channels_last=True, pin_memory=False, autocast=None)


def test_a_gpu_runs_float32_too_unless_bf16_is_asked_for(settings):
    assert run_options(torch.device("cuda")) == RunOptions(batch_size=256, pin_memory=True, autocast=None)  # no GPU is touched
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32  # TF32 would round like bf16
    settings.GLIMPSE_INFERENCE_PRECISION = "bf16"
    assert run_options(CPU) == RunOptions(batch_size=32, autocast="bfloat16")


def test_cuda_options_on_the_cpu_keep_what_it_can_use(caplog):
    with caplog.at_level("INFO", logger="glimpse.encoders"):
        usable = CUDA_OPTIONS.usable_on(CPU)
    assert usable == RunOptions(batch_size=3, channels_last=True, pin_memory=False, autocast=None)
    assert "pin_memory not used on cpu" in caplog.text
    assert CUDA_OPTIONS.usable_on(torch.device("cuda")) == CUDA_OPTIONS  # a device object; no GPU is touched


def test_the_device_setting(settings):
    settings.GLIMPSE_DEVICE = "cpu"
    assert encoders.device() == CPU
    settings.GLIMPSE_DEVICE = "auto"
    assert encoders.device() == (torch.device("cuda") if torch.cuda.is_available() else CPU)
    settings.GLIMPSE_DEVICE = "tpu-please"
    with pytest.raises(Exception, match="GLIMPSE_DEVICE='tpu-please' is not a torch device"):
        encoders.device()


@pytest.fixture(scope="module")
def image_model():
    torch.manual_seed(0)
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def test_the_image_tower_with_cuda_options_falls_back_to_the_same_vectors(image_model):
    pixels = np.random.default_rng(2).normal(size=(7, 3, 224, 224)).astype(np.float32)
    plain = ImageEncoder(image_model, device=CPU, options=RunOptions(channels_last=False)).encode(pixels)
    asked = ImageEncoder(image_model, device=CPU, options=CUDA_OPTIONS)
    assert asked.options == RunOptions(batch_size=3)  # three forward passes: 3 + 3 + 1
    found = asked.encode(pixels)
    assert found.features.shape == (7, 1280) and found.probabilities.shape == (7, 1000)
    assert np.abs(found.features - plain.features).max() < 1e-5
    assert np.abs(found.probabilities - plain.probabilities).max() < 1e-5
    assert next(asked.tower.parameters()).requires_grad  # inference_mode, not a model switched to no-grad for good


def test_the_text_tower_with_cuda_options_falls_back_to_the_same_vectors():
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64))
    tokens = Tokens(encoders.text_model(encoders.MINILM).location)
    texts = ["a red apple", "an electric guitar", "a cat", "Old car on a long road", "x"]
    plain = TextEncoder(model, tokens, device=CPU, options=RunOptions()).encode(texts)
    found = TextEncoder(model, tokens, device=CPU, options=CUDA_OPTIONS).encode(texts, batch_size=2)
    assert found.shape == (5, 32) and found.dtype == np.float32
    assert np.abs(found - plain).max() < 1e-5
    assert np.allclose(np.linalg.norm(found, axis=1), 1, atol=1e-5)
