"""BERT-family text tower: tokens -> mean-pooled, L2-normalised vectors.

Tokenising is the same for every backend. A model folder with a `tokenizer.json` is read
by the `tokenizers` library alone, which loads in a tenth of a second and without torch
(transformers' AutoTokenizer imports torch); other models go through AutoTokenizer.
"""
from pathlib import Path

import numpy as np

from .devices import RunOptions

TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Tokens:
    """Texts -> padded int64 arrays named as BERT's inputs."""

    def __init__(self, location: str, *, max_tokens: int = 128):
        tokenizer_file = Path(location, "tokenizer.json")
        if tokenizer_file.exists():
            from tokenizers import Tokenizer

            self.fast = Tokenizer.from_file(str(tokenizer_file))
            self.fast.enable_truncation(max_tokens)
            pad_token = next(token for token in ("[PAD]", "<pad>") if self.fast.token_to_id(token) is not None)  # BERT's, XLM-R's
            pad = self.fast.padding or {"pad_id": self.fast.token_to_id(pad_token), "pad_token": pad_token, "pad_type_id": 0}
            # Pad to the longest text of the batch, not to the file's fixed length.
            self.fast.enable_padding(pad_id=pad["pad_id"], pad_token=pad["pad_token"], pad_type_id=pad["pad_type_id"])
            self.slow = None
        else:
            from transformers import AutoTokenizer

            self.fast = None
            self.slow = AutoTokenizer.from_pretrained(location)
        self.max_tokens = max_tokens

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self.fast is not None:
            encodings = self.fast.encode_batch(texts)
            return {
                "input_ids": np.array([encoding.ids for encoding in encodings], dtype=np.int64),
                "attention_mask": np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64),
                "token_type_ids": np.array([encoding.type_ids for encoding in encodings], dtype=np.int64),
            }
        tokens = self.slow(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np")
        return {name: tokens[name].astype(np.int64) if name in tokens else np.zeros_like(tokens["input_ids"]) for name in TOKEN_INPUTS}


def encode_in_batches(texts: list[str], *, tokens: Tokens, batch_size: int, dimensions: int, run, prefix: str = "") -> np.ndarray:
    """Tokenise and run `run(token arrays) -> unit vectors` batch by batch, shortest texts
    first: each batch pads to its longest text, so sorting saves the padded positions
    (a job's descriptions run from a word to 128 tokens). `prefix` starts every text (e5's
    "query: ")."""
    texts = [prefix + text for text in texts]
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    vectors = np.zeros((len(texts), dimensions), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chosen = order[start : start + batch_size]
        vectors[chosen] = run(tokens([texts[index] for index in chosen]))
    return vectors


class TextEncoder:
    """The tower in torch: for CUDA, for training, and the reference the exported backends
    are checked against."""

    backend = "torch"

    @property
    def precision(self) -> str:
        return "bf16" if self.options.autocast == "bfloat16" else "f32"

    def __init__(self, model, tokens: Tokens, *, device, options: RunOptions | None = None, prefix: str = ""):
        from .devices import run_options
        from .towers import TextTower

        self.tower = TextTower(model).eval().to(device)
        self.tokens = tokens
        self.device = device
        self.options = (options or run_options(device)).usable_on(device)
        self.dimensions = model.config.hidden_size
        self.prefix = prefix

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Texts -> (n, dimensions) float32 unit vectors."""
        import torch

        from .towers import autocast, to_device

        def run(tokens: dict[str, np.ndarray]) -> np.ndarray:
            inputs = {name: to_device(array, self.device, self.options) for name, array in tokens.items()}
            with torch.inference_mode(), autocast(self.device, self.options):
                return self.tower(**inputs).float().cpu().numpy()

        return encode_in_batches(texts, tokens=self.tokens, batch_size=batch_size, dimensions=self.dimensions, run=run, prefix=self.prefix)


def transformers_model(location: str, *, pooler: bool = True):
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    # A checkpoint without a pooler loads without one, rather than with random weights it never uses.
    return AutoModel.from_pretrained(location, **({} if pooler else {"add_pooling_layer": False}))
