"""The two towers as torch modules, each ending in the exact outputs Glimpse stores.

Every backend runs these: torch directly, ONNX Runtime and OpenVINO through their ONNX
export, so normalisation, softmax and mean pooling are the same arithmetic everywhere.
Imported only where a torch tower is built (a worker, an export, training).
"""
import contextlib

import torch
from torch.nn import functional

from .devices import RunOptions


class ImageTower(torch.nn.Module):
    """A timm classifier: pixels -> (unit pooled features, class probabilities)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.model.forward_head(self.model.forward_features(pixels), pre_logits=True)
        logits = self.model.get_classifier()(pooled)
        return functional.normalize(pooled.float(), dim=-1), logits.float().softmax(dim=-1)


class TextTower(torch.nn.Module):
    """A BERT-family encoder: tokens -> mean-pooled unit vectors."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return functional.normalize(pooled.float(), dim=-1)


def autocast(device: torch.device, options: RunOptions):
    """Mixed precision where the options ask for it, else nothing."""
    if options.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, options.autocast))


def to_device(array, device: torch.device, options: RunOptions) -> torch.Tensor:
    """A host numpy batch on `device`; pinned first where the options say, so the copy overlaps."""
    tensor = torch.from_numpy(array)
    if options.pin_memory:
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=options.pin_memory)
