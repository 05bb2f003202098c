import torch
from torch.nn import functional


def symmetric_info_nce(
    texts: torch.Tensor, images: torch.Tensor, logit_scale: torch.Tensor, extra_images: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE over matched rows (text i ↔ image i) with a learned temperature.

    `extra_images` are hard negatives: more columns for the text→image direction only.
    """
    scale = logit_scale.exp().clamp(max=100)
    logits = scale * texts @ images.T
    labels = torch.arange(len(texts), device=texts.device)
    text_to_image = logits if extra_images is None else torch.cat([logits, scale * texts @ extra_images.T], dim=1)
    return (functional.cross_entropy(text_to_image, labels) + functional.cross_entropy(logits.T, labels)) / 2
