"""The inference backends: the same vectors from torch, ONNX Runtime and OpenVINO on any
CPU (OpenVINO computes in bf16 by default where the CPU has it: these tests hold on CPUs
with and without avx512_bf16), and an export cache that survives concurrent first use,
within one process and across processes, and damage."""
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image as PILImage

from embeddings import encoders
from embeddings.encoders import exported
from tests.images import DEMO

EXPORTED = ("onnxruntime", "openvino")


def demo_images(count: int) -> list[PILImage.Image]:
    rows = [json.loads(line) for line in Path(DEMO, "data.jsonl").read_text(encoding="utf-8").splitlines()][:count]
    return [PILImage.open(Path(DEMO, row["file"])) for row in rows]


def generated_images() -> list[PILImage.Image]:
    """Noise, a flat colour, a tall strip, a greyscale and a palette image: inputs far from drawings."""
    rng = np.random.default_rng(7)
    return [
        PILImage.fromarray(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)),
        PILImage.new("RGB", (64, 64), (12, 200, 90)),
        PILImage.new("RGB", (20, 900), (0, 0, 0)),
        PILImage.fromarray(rng.integers(0, 256, (128, 128), dtype=np.uint8), mode="L"),
        PILImage.new("P", (50, 80), 3),
    ]


TEXTS = ["a red apple", "an electric guitar", "", "Zürich café, naïve 🐱", "a very long description " * 60, "x"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED)
def test_the_image_tower_gives_torch_vectors_on(backend):
    images = demo_images(12) + generated_images()
    reference = encoders.image_encoder_on("torch")
    candidate = encoders.image_encoder_on(backend)
    assert candidate.preprocess == reference.preprocess
    batch = np.stack([reference.preprocess(image) for image in images])
    expected, found = reference.encode(batch), candidate.encode(batch)
    assert found.features.shape == (17, 1280) and found.probabilities.shape == (17, 1000)
    assert np.abs(found.features - expected.features).max() < 1e-4
    assert np.abs(found.probabilities - expected.probabilities).max() < 1e-4
    assert (np.argmax(found.probabilities, axis=1) == np.argmax(expected.probabilities, axis=1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED)
def test_the_text_tower_gives_torch_vectors_on(backend):
    expected = encoders.text_encoder_on("torch").encode(TEXTS, batch_size=4)
    found = encoders.text_encoder_on(backend).encode(TEXTS, batch_size=4)
    single = encoders.text_encoder_on(backend).encode(["a red apple"])
    assert found.shape == (6, 384) and found.dtype == np.float32
    assert np.abs(found - expected).max() < 1e-4
    assert np.abs(single[0] - expected[0]).max() < 1e-4  # alone, without padding to a longer text
    assert encoders.text_encoder_on(backend).encode([]).shape == (0, 384)


@pytest.mark.slow
def test_the_fast_tokenizer_matches_transformers():
    from transformers import AutoTokenizer

    location = encoders.text_model(encoders.MINILM).location
    ours = encoders.text_encoder_on("openvino").tokens(TEXTS)
    theirs = AutoTokenizer.from_pretrained(location)(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="np")
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert np.array_equal(ours[name], theirs[name]), name


def test_auto_is_openvino_on_the_cpu_and_torch_on_cuda(settings):
    settings.GLIMPSE_INFERENCE_BACKEND, settings.GLIMPSE_DEVICE = "auto", "cpu"
    assert encoders.inference_backend() == "openvino"
    settings.GLIMPSE_DEVICE = "cuda"
    assert encoders.inference_backend() == "torch"
    settings.GLIMPSE_INFERENCE_BACKEND = "onnxruntime"
    assert encoders.inference_backend() == "onnxruntime"


def test_an_unknown_backend_is_refused_at_start():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "GLIMPSE_INFERENCE_BACKEND": "tensorflow"},
    )
    assert result.returncode != 0
    assert "GLIMPSE_INFERENCE_BACKEND='tensorflow': use auto, torch, onnxruntime or openvino" in result.stderr


def test_a_small_module_exports_and_runs_the_same_on_every_runtime(tmp_path):
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Softmax(dim=-1)).eval()
    inputs = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)

    def export(path: Path) -> dict:
        exported.onnx_export(module, {"pixels": inputs[:2]}, ["probabilities"], path)
        return {"note": "tiny"}

    folder = tmp_path / "tiny"
    config = exported.exported(folder, export)
    assert config["note"] == "tiny" and config["sha256"] == exported.file_digest(folder / "model.onnx")
    with torch.inference_mode():
        expected = module(torch.from_numpy(inputs)).numpy()
    for runtime in exported.RUNTIMES.values():
        (found,) = runtime(folder / "model.onnx", tmp_path, precision="f32")({"pixels": inputs})  # batch 5, exported at 2
        assert np.abs(found - expected).max() < 1e-6


def cpu_has_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_openvino_computes_in_f32_unless_bf16_is_asked_for_and_the_cpu_has_it(tmp_path):
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 8)).eval()
    inputs = np.random.default_rng(1).normal(size=(16, 64)).astype(np.float32)
    folder = tmp_path / "tiny"
    exported.exported(folder, lambda path: exported.onnx_export(module, {"pixels": inputs[:2]}, ["out"], path) or {})
    with torch.inference_mode():
        expected = module(torch.from_numpy(inputs)).numpy()
    f32 = exported.OpenVino(folder / "model.onnx", tmp_path, precision="f32")
    assert str(f32.model.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    assert np.abs(f32({"pixels": inputs})[0] - expected).max() < 1e-5
    if not cpu_has_bf16():
        with pytest.raises(ImproperlyConfigured, match="this CPU has no bf16 instructions"):
            exported.OpenVino(folder / "model.onnx", tmp_path, precision="bf16")
        return
    bf16 = exported.OpenVino(folder / "model.onnx", tmp_path, precision="bf16")
    assert str(bf16.model.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'bfloat16'>"
    difference = np.abs(bf16({"pixels": inputs})[0] - expected).max()
    assert 1e-5 < difference < 0.1  # rounded to bf16's 8-bit mantissa, and only that
    # The compiled-model cache keeps the precisions apart: f32 again is f32's answer.
    assert np.abs(exported.OpenVino(folder / "model.onnx", tmp_path, precision="f32")({"pixels": inputs})[0] - expected).max() < 1e-5


def test_onnx_runtime_refuses_bf16_rather_than_computing_in_f32_under_its_name(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="ONNX Runtime runs the towers in f32 only"):
        exported.OnnxRuntime(tmp_path / "model.onnx", tmp_path, precision="bf16")


@pytest.mark.slow
def test_both_towers_built_at_once_on_an_empty_cache_export_each_once(settings, tmp_path):
    """What a worker does at its first job on a new data folder: the text tower on the
    encoder thread while the main thread builds the image tower (torch's exporter is not
    thread-safe)."""
    settings.GLIMPSE_MODEL_CACHE = tmp_path / "models"
    built, failures = {}, []

    def build(name, make):
        try:
            built[name] = make("openvino")
        except Exception as error:  # reported below with the thread's name
            failures.append(f"{name}: {type(error).__name__}: {error}")

    threads = [
        threading.Thread(target=build, args=("text", encoders.text_encoder_on)),
        threading.Thread(target=build, args=("image", encoders.image_encoder_on)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    folders = sorted(path.name for path in (tmp_path / "models" / "exported").iterdir())
    assert len(folders) == 4 and not [name for name in folders if "partial" in name]  # two exports and their locks
    assert built["text"].encode(["a red apple"]).shape == (1, 384)
    assert built["image"].encode(np.zeros((1, 3, 224, 224), dtype=np.float32)).features.shape == (1, 1280)


def counting_export(calls: list):
    def export(path: Path) -> dict:
        calls.append(path)
        path.write_bytes(b"model %d" % len(calls))
        return {"dimensions": 3}

    return export


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "model.onnx").write_bytes(b"model 1, with a flipped byte"),
        lambda folder: (folder / "model.onnx").unlink(),
        lambda folder: (folder / "config.json").write_text("{truncated"),
    ],
    ids=["changed model", "missing model", "unreadable config"],
)
def test_a_damaged_export_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    calls = []
    folder = tmp_path / "tower"
    exported.exported(folder, counting_export(calls))
    assert exported.exported(folder, counting_export(calls))["dimensions"] == 3 and len(calls) == 1  # reused
    damage(folder)
    with caplog.at_level(logging.WARNING, logger="glimpse.encoders"):
        config = exported.exported(folder, counting_export(calls))
    assert len(calls) == 2 and (folder / "model.onnx").read_bytes() == b"model 2"
    assert config["sha256"] == exported.file_digest(folder / "model.onnx")
    assert f"the exported model in {folder} is damaged" in caplog.text
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tower", "tower.lock"]  # no partial left


CONCURRENT_EXPORT = """
import sys, time
from pathlib import Path
from embeddings.encoders.exported import exported

folder, log = Path(sys.argv[1]), Path(sys.argv[2])

def export(path):
    with open(log, "a") as handle:
        handle.write("exported\\n")
    time.sleep(1.5)  # long enough for the other process to arrive meanwhile
    path.write_bytes(b"the model")
    return {"dimensions": 3}

print(exported(folder, export)["sha256"])
"""


def test_two_processes_starting_at_once_export_once(tmp_path):
    log = tmp_path / "exports.log"
    command = [sys.executable, "-c", CONCURRENT_EXPORT, str(tmp_path / "models" / "tower"), str(log)]
    processes = [subprocess.Popen(command, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    assert log.read_text() == "exported\n"
    assert outputs[0] == outputs[1] == exported.file_digest(tmp_path / "models" / "tower" / "model.onnx") + "\n"
