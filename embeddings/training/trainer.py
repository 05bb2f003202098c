"""Fit projection heads on cached frozen-tower vectors: no image passes through the CNN here."""
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .heads import HeadWeights, ProjectionHeads
from .loss import graded_info_nce


@dataclass
class TrainingSet:
    bridge: np.ndarray  # (images, 384) version-1 image vectors
    features: np.ndarray  # (images, 1280) pooled CNN features
    texts: np.ndarray  # (pairs, 384) raw text-tower vectors: descriptions and judged queries
    image_rows: np.ndarray  # (pairs,) which image each text belongs to
    negatives: list[np.ndarray] = field(default_factory=list)  # per pair: image rows that must rank below
    # per pair: its share of its text's target (a judged query's images by grade; 1 for a description)
    weights: np.ndarray | None = None

    def __len__(self):
        return len(self.texts)


@dataclass(frozen=True)
class TrainingOptions:
    # Small steps: on openclipart, held-out nDCG@10 rose most (0.085 -> 0.107) with lr 3e-4
    # for 10-15 epochs; faster or longer training traded exact matches for category matches.
    epochs: int = 15
    batch_size: int = 256
    learning_rate: float = 3e-4
    l2: float = 0.01  # pull toward the bridge, relative to the contrastive loss
    seed: int = 0
    # Each text is scored against this many catalog images (all of them, in a catalog this
    # size or smaller): far more negatives than a batch holds, and it stays fast on a CPU.
    catalog_negatives: int = 4096


def heads_train(
    data: TrainingSet,
    *,
    options: TrainingOptions,
    device: torch.device,
    start: HeadWeights | None = None,
    on_epoch: Callable[[int, HeadWeights], dict] | None = None,
    keep_best: str | None = None,
) -> tuple[HeadWeights, list[dict]]:
    """Deterministic for a seed on one device. Starts from `start` (the active version's
    heads) or, without it, from zero heads, which is the bridge. Returns the heads and
    one curve row per epoch; with `keep_best`, a key of `on_epoch`'s rows, the heads of
    the epoch where it was highest (early stopping on a held-out split)."""
    if len(data) < 2:
        raise ValueError(f"need at least 2 training pairs, have {len(data)}")
    generator = torch.Generator().manual_seed(options.seed)
    torch.manual_seed(options.seed)
    if start is None:
        heads = ProjectionHeads(feature_dimensions=data.features.shape[1], dimensions=data.bridge.shape[1])
    else:
        heads = ProjectionHeads.starting_from(start)
    heads = heads.to(device)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=options.learning_rate, weight_decay=0.0)
    bridge = torch.from_numpy(data.bridge).to(device)
    features = torch.from_numpy(data.features).to(device)
    texts = torch.from_numpy(data.texts).to(device)
    pair_weights = np.ones(len(data), dtype=np.float32) if data.weights is None else data.weights.astype(np.float32)
    weights = torch.from_numpy(pair_weights).to(device)
    curve = []
    best = None
    for epoch in range(1, options.epochs + 1):
        heads.train()
        order = torch.randperm(len(data), generator=generator).to(device)
        losses = []
        for start in range(0, len(data), options.batch_size):
            batch = order[start : start + options.batch_size]
            if len(batch) < 2:
                continue
            columns = catalog_columns(data, batch.cpu().numpy(), limit=options.catalog_negatives, generator=generator)
            targets = torch.from_numpy(np.searchsorted(columns, data.image_rows[batch.cpu().numpy()])).to(device)
            column_rows = torch.from_numpy(columns).to(device)
            image_vectors = heads.embed_images(bridge[column_rows], features[column_rows])
            text_vectors = heads.embed_texts(texts[batch])
            loss = graded_info_nce(text_vectors, image_vectors, targets, weights[batch], heads.logit_scale)
            penalty = options.l2 * (heads.image.weight.square().sum() + heads.text.weight.square().sum())
            optimizer.zero_grad()
            (loss + penalty).backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "loss": round(float(np.mean(losses)), 5), "temperature": round(float(1 / heads.logit_scale.detach().exp()), 5)}
        exported = heads.export()
        if on_epoch:
            row.update(on_epoch(epoch, exported))
        curve.append(row)
        if keep_best and (best is None or row[keep_best] > best[0]):
            best = (row[keep_best], exported)
    return (best[1] if best else heads.export()), curve


def catalog_columns(data: TrainingSet, batch: np.ndarray, *, limit: int, generator: torch.Generator) -> np.ndarray:
    """Sorted image rows a batch is scored against: every catalog image up to `limit`;
    beyond it the batch's targets, their mined negatives and a seeded random sample."""
    images = len(data.bridge)
    if images <= limit:
        return np.arange(images, dtype=np.int64)
    chosen = {int(row) for row in data.image_rows[batch]}
    if data.negatives:
        chosen |= {int(row) for index in batch for row in data.negatives[index]}
    sample = torch.randperm(images, generator=generator)[: max(0, limit - len(chosen))].numpy()
    return np.array(sorted(chosen | {int(row) for row in sample}), dtype=np.int64)
