"""BERT-family text tower via transformers, mean-pooled and L2-normalised."""
import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging


class TextEncoder:
    def __init__(self, model, tokenizer, *, device: torch.device, max_tokens: int = 128):
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.device = device
        self.max_tokens = max_tokens
        self.dimensions = model.config.hidden_size

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: torch.device) -> "TextEncoder":
        transformers_logging.disable_progress_bar()
        return cls(AutoModel.from_pretrained(name_or_path), AutoTokenizer.from_pretrained(name_or_path), device=device)

    @torch.inference_mode()
    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Texts -> (n, dimensions) float32 unit vectors."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.concatenate(chunks)
