import torch
from torch.nn import functional


def graded_info_nce(
    texts: torch.Tensor, images: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Text → image InfoNCE against many catalog images at once (`images`, one column each;
    `targets` says which column is each text's image), each pair weighted by its share of
    its text's target. A query with images graded 3 and 1 so learns a target distribution
    3 : 1 over them, which is cross-entropy against graded relevance."""
    logits = logit_scale.exp().clamp(max=100) * texts @ images.T
    losses = functional.cross_entropy(logits, targets, reduction="none")
    return (losses * weights).sum() / weights.sum()
