"""The towers exported once to ONNX and run on the CPU by ONNX Runtime or OpenVINO.

torch exports a tower at first use (towers.py: the same module the torch backend runs)
into a folder beside the converted weights, named by the weights' digest and the
exporter's version: new weights or a new torch export again, and no process ever runs
a stale graph. Both runtimes read the same file; OpenVINO also keeps its compiled blobs
in a folder named by its own version. Once the folder exists, neither torch nor timm
nor transformers is imported: a worker or a web process starts in a fraction of the time.

Two processes that start at once export once: the second waits on a file lock and then
finds the folder, which appears whole because it is written under a temporary name and
renamed. A folder whose model no longer matches the checksum in its config (a disk
error, an interrupted copy) is exported again with a warning.
"""
import hashlib
import json
import locale
import logging
import os
import shutil
import threading
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from config.embedded import file_lock

from .image import ImageOutputs, Preprocessing
from .text import TOKEN_INPUTS, Tokens, encode_in_batches

logger = logging.getLogger("glimpse.encoders")

OPSET = 17
BACKENDS = ("onnxruntime", "openvino")
# torch.onnx.export keeps global state: two threads exporting at once (a worker builds the
# text tower on its encoder thread while the main thread builds the image tower) fail with
# "GLOBALS.in_onnx_export must be False". The file lock below serialises processes only.
EXPORT_LOCK = threading.Lock()


class DamagedExport(Exception):
    pass


def exporter_version() -> str:
    return f"torch{version('torch')}-opset{OPSET}"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def module_digest(module) -> str:
    """For weights that are not one local file (a hub download): the tensors themselves."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_folder(cache: Path, *, model_name: str, weights_digest: str) -> Path:
    return cache / "exported" / f"{model_name.replace('/', '--')}-{weights_digest[:16]}-{exporter_version()}"


def verified(folder: Path) -> dict:
    """The folder's config, after checking its model against the recorded checksum."""
    if not folder.exists():
        raise FileNotFoundError(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        expected = config["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DamagedExport(f"unreadable config.json: {error}") from None
    try:
        actual = file_digest(folder / "model.onnx")
    except OSError as error:
        raise DamagedExport(f"unreadable model.onnx: {error}") from None
    if actual != expected:
        raise DamagedExport("model.onnx does not match its checksum")
    return config


def exported(folder: Path, export: Callable[[Path], dict]) -> dict:
    """The config of the verified export in `folder`; `export(onnx_path) -> config` writes
    it first if no process has (or if the one there is damaged)."""
    try:
        return verified(folder)
    except FileNotFoundError:
        pass
    except DamagedExport as error:
        logger.warning("the exported model in %s is damaged (%s); exporting it again", folder, error)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.with_name(folder.name + ".lock")):
        try:
            return verified(folder)  # another process finished it while this one waited
        except FileNotFoundError:
            pass
        except DamagedExport:
            shutil.rmtree(folder)
        partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        logger.info("exporting %s to ONNX (once; later starts reuse it)", folder.name)
        with EXPORT_LOCK:
            config = export(partial / "model.onnx")
        config["sha256"] = file_digest(partial / "model.onnx")
        (partial / "config.json").write_text(json.dumps(config, indent=1))
        partial.rename(folder)
    return verified(folder)


def onnx_export(module, inputs: dict, outputs: list[str], path: Path) -> None:
    """`module` to ONNX with every axis but the channels free (batch, and tokens for text)."""
    import torch

    dynamic = {name: {0: "batch"} | ({1: "tokens"} if array.ndim == 2 else {}) for name, array in inputs.items()}
    dynamic |= {name: {0: "batch"} for name in outputs}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer notes about Python conditionals on shapes
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(array) for array in inputs.values()),
            str(path),
            input_names=list(inputs),
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )


def export_image_tower(model) -> Callable[[Path], dict]:
    def export(path: Path) -> dict:
        from .towers import ImageTower

        preprocessing = Preprocessing.from_timm(model.pretrained_cfg)
        pixels = np.zeros((2, 3, preprocessing.size, preprocessing.size), dtype=np.float32)
        onnx_export(ImageTower(model).eval(), {"pixels": pixels}, ["features", "probabilities"], path)
        return {"preprocessing": preprocessing.as_dict()}

    return export


def export_text_tower(model, tokens: Tokens) -> Callable[[Path], dict]:
    def export(path: Path) -> dict:
        from .towers import TextTower

        example = tokens(["an example sentence", "and a second, longer example sentence"])
        onnx_export(TextTower(model).eval(), example, ["vectors"], path)
        return {"dimensions": model.config.hidden_size}

    return export


class OnnxRuntime:
    def __init__(self, path: Path, cache: Path, *, precision: str):
        import onnxruntime

        if precision != "f32":
            raise ImproperlyConfigured(
                f"GLIMPSE_INFERENCE_PRECISION={precision}: ONNX Runtime runs the towers in f32 only; use it with f32, "
                "or GLIMPSE_INFERENCE_BACKEND=openvino for bf16"
            )
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, inputs)


OPENVINO_COMPILES = threading.Lock()


class OpenVino:
    # OpenVINO's CPU plugin computes in bf16 by default wherever the CPU has it (avx512_bf16,
    # AMX): features then differ from torch's by up to 0.03, and two workers on two machines
    # would write different vectors for one picture. The precision is always named.
    HINTS = {"f32": "f32", "bf16": "bf16"}

    def __init__(self, path: Path, cache: Path, *, precision: str):
        import openvino

        core = openvino.Core()
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise ImproperlyConfigured(
                "GLIMPSE_INFERENCE_PRECISION=bf16: this CPU has no bf16 instructions (avx512_bf16 or AMX); use f32"
            )
        # OpenVINO names its blobs by model, device and precision; the folder adds its own version.
        core.set_property({"CACHE_DIR": str(cache / f"openvino-{openvino.__version__.split('-')[0]}")})
        # OpenVINO's model cache switches to the C locale while it reads or writes a blob and
        # can leave the process there (openvino PR 24431 restores it from a pointer that its own
        # setlocale call overwrote); Python would then read files and subprocess output as
        # ASCII. Whatever it does, the process keeps its locale.
        # Two towers compiled at once by two threads would interleave those switches, and the
        # second would put back the first one's C locale: one compile at a time.
        with OPENVINO_COMPILES:
            saved = locale.setlocale(locale.LC_ALL)
            try:
                self.model = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": self.HINTS[precision]})
            finally:
                if locale.setlocale(locale.LC_ALL) != saved:
                    locale.setlocale(locale.LC_ALL, saved)

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        # One request per call: a compiled model is shared by a web process's threads.
        results = self.model.create_infer_request().infer(inputs)
        return [results[output] for output in self.model.outputs]


RUNTIMES = {"onnxruntime": OnnxRuntime, "openvino": OpenVino}


class ExportedImageEncoder:
    def __init__(self, folder: Path, config: dict, *, backend: str, precision: str, cache: Path, batch_size: int = 32):
        self.run = RUNTIMES[backend](folder / "model.onnx", cache, precision=precision)
        self.backend = backend
        self.precision = precision
        self.preprocess = Preprocessing.from_dict(config["preprocessing"])
        self.batch_size = batch_size

    def encode(self, batch: np.ndarray) -> ImageOutputs:
        """A preprocessed (n, 3, size, size) batch -> pooled features and class probabilities."""
        parts = []
        for start in range(0, len(batch), self.batch_size):
            features, probabilities = self.run({"pixels": np.ascontiguousarray(batch[start : start + self.batch_size], dtype=np.float32)})
            parts.append(ImageOutputs(features=features, probabilities=probabilities))
        return ImageOutputs.concatenate(parts)


class ExportedTextEncoder:
    def __init__(self, folder: Path, config: dict, tokens: Tokens, *, backend: str, precision: str, cache: Path, prefix: str = ""):
        self.run = RUNTIMES[backend](folder / "model.onnx", cache, precision=precision)
        self.backend = backend
        self.precision = precision
        self.prefix = prefix
        self.tokens = tokens
        self.dimensions = config["dimensions"]

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Texts -> (n, dimensions) float32 unit vectors."""
        return encode_in_batches(
            texts, tokens=self.tokens, batch_size=batch_size, dimensions=self.dimensions, prefix=self.prefix,
            run=lambda tokens: self.run({name: tokens[name] for name in TOKEN_INPUTS})[0],
        )
